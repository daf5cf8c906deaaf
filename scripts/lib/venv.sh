# shellcheck shell=bash
# The project virtualenv (.venv): created on first use, and re-synced when a
# requirements file changes, so the README's commands work on a fresh clone.

reforge_venv() {
    local root=$1 want=$2 python=${PYTHON:-python3} stamp hash
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "venv: reforge needs Python >= 3.11 ('$python' is $("$python" --version 2>&1))" >&2
        return 1
    fi
    stamp="$root/.venv/.${want%.txt}.sha256"
    hash=$(cat "$root/requirements.txt" "$root/$want" | sha256sum | cut -d' ' -f1)
    if [ -x "$root/.venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
        return 0
    fi
    echo "venv: installing $want into .venv (about a minute, once)"
    [ -x "$root/.venv/bin/python" ] || "$python" -m venv "$root/.venv"
    "$root/.venv/bin/python" -m pip install --quiet --upgrade pip
    "$root/.venv/bin/python" -m pip install --quiet -r "$root/$want"
    echo "$hash" >"$stamp"
}
