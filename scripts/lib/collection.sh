# shellcheck shell=bash
# The collection stage of scripts/test: build reforge.workstation the way Galaxy
# would, install the tarball into a scratch collections path, and run
# ansible-test's sanity and unit tests there, where they see exactly what users
# install.

# ansible-test bootstraps pip in each of its virtualenvs from a get-pip script it
# downloads from a host this network cannot reach. It first looks in its cache, so
# a cached "script" that asks the interpreter's own ensurepip for pip does the same
# job offline. The name carries the pip version ansible-test pins.
reforge_ansible_test_bootstrap() {
    local python=$1 version cache
    version=$("$python" -c 'from types import SimpleNamespace as N
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(N(version=None))["pip"])') || return 1
    cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
    [ -f "$cache" ] && return 0
    mkdir -p "$(dirname "$cache")"
    printf '%s\n' '# pip for a new virtualenv, from the interpreter itself (reforge scripts/lib/collection.sh).' \
        'import ensurepip' 'ensurepip._main(["--upgrade", "--default-pip"])' >"$cache"
}

# reforge_collection ROOT PYTHON: build, install, sanity, units. Fails on the first failure.
reforge_collection() {
    local root=$1 python=$2 work pyver installed status
    work=$(mktemp -d) || return 1
    pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    reforge_ansible_test_bootstrap "$python" || { rm -rf "$work"; return 1; }
    installed="$work/install/ansible_collections/reforge/workstation"
    # Each step needs the one before; `&&` rather than set -e, which scripts/test's
    # `if "$@"` would switch off for everything called from it.
    (
        # Only the tarball's own configuration: not the checkout's ansible.cfg and collections/ link.
        unset ANSIBLE_CONFIG
        cd "$work" &&
            ansible-galaxy collection build --force --output-path "$work/build" "$root" &&
            ansible-galaxy collection install --force --no-deps -p "$work/install" \
                "$work"/build/reforge-workstation-*.tar.gz &&
            cd "$installed" &&
            # ansible-test lists a collection's files through git when it can; a throw-away
            # repository makes that list exactly the installed files.
            git init -q && git add -A &&
            ansible-test sanity --python "$pyver" --color no &&
            # --venv: its own virtualenv for the test requirements; the project's .venv stays as it is.
            ansible-test units --venv --python "$pyver" --requirements --color no
    )
    status=$?
    rm -rf "$work"
    return "$status"
}
