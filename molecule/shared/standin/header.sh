#!/bin/bash
# Stand-in for the Miniforge3 installer: reforge's Molecule tests only.
#
# The conda-forge channels and the Miniforge downloads are out of reach in the
# test environments, so this one file takes the installer's place. It has the
# real installer's command line (-b -p PREFIX [-u] [-f]) and builds a prefix
# with a real Python and pip (python3 -m venv) plus conda / mamba front ends
# that answer the sub-commands reforge calls, against a small embedded package
# index. What it covers and what it does not: README.md in this directory.
#
# Needs only bash, coreutils and python3 with the venv module (ensurepip).
#
# This file is generated: header.sh is the installer, conda_standin/*.py is the
# front end it carries as its payload (standin_write_payload below). Edit those,
# then run `python3 molecule/shared/standin/build.py` (a test fails while this
# file is stale).

set -eu

# As constructor's header.sh: the installer refuses to run unless its own name ends
# in .sh (it takes anything else for being sourced), whatever shell runs it.
if ! echo "$0" | grep '\.sh$' > /dev/null; then
    printf 'Please run using "bash"/"dash"/"sh"/"zsh", but not "." or "source".\n' >&2
    exit 1
fi

STANDIN_RELEASE="26.3.2-3"
@STANDIN_PAYLOAD@

INSTALLER_NAME="Miniforge3"

usage() {
    cat <<USAGE
usage: $0 [options]

Installs ${INSTALLER_NAME} ${STANDIN_RELEASE} (reforge test stand-in)

-b           run install in batch mode (without manual intervention),
             required: the stand-in has no interactive mode
-f           no error if install prefix already exists
-h           print this help message and exit
-p PREFIX    install prefix, defaults to \$HOME/miniforge3
-s           accepted for compatibility (no pre/post-link scripts here)
-u           update an existing installation
USAGE
}

BATCH=0
FORCE=0
UPDATE=0
PREFIX="${HOME:-/root}/miniforge3"

while getopts "bfhp:su" opt; do
    case "$opt" in
        b) BATCH=1 ;;
        f) FORCE=1 ;;
        h) usage; exit 0 ;;
        p) PREFIX="$OPTARG" ;;
        s) ;;
        u) UPDATE=1 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ "$#" -gt 0 ]; then
    echo "ERROR: unexpected argument(s): $*" >&2
    usage >&2
    exit 2
fi

if [ "$BATCH" != 1 ]; then
    echo "ERROR: the ${INSTALLER_NAME} stand-in runs only in batch mode; pass -b" >&2
    exit 1
fi

case "$PREFIX" in
    *" "*)
        echo "ERROR: Cannot install into directories with spaces" >&2
        exit 1
        ;;
    # A literal "~" (quoted on the caller's side) means HOME, as for the real installer.
    \~ | \~/*) PREFIX="${HOME}${PREFIX#\~}" ;;
esac

if [ -e "$PREFIX" ] && [ "$UPDATE" = 0 ] && [ "$FORCE" = 0 ]; then
    printf "ERROR: File or directory already exists: '%s'\n" "$PREFIX" >&2
    printf "If you want to update an existing installation, use the -u option.\n" >&2
    exit 1
fi

# The real installer ignores the caller's conda configuration files.
unset CONDARC MAMBARC

HOST_PYTHON="${STANDIN_PYTHON:-python3}"
if ! "$HOST_PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "ERROR: the stand-in needs python3 >= 3.10 with the venv module (ensurepip): '$HOST_PYTHON'" >&2
    exit 1
fi

if ! mkdir -p "$PREFIX" 2>/dev/null; then
    echo "ERROR: Could not create directory: '$PREFIX'" >&2
    exit 1
fi
PREFIX="$(cd "$PREFIX" && pwd)"
echo "PREFIX=$PREFIX"

# 0. Like the real installer, unpack the standalone first: Miniforge's is micromamba,
#    written as PREFIX/micromamba, with PREFIX/_conda a symbolic link to it. An install
#    killed in between leaves only PREFIX/micromamba (STANDIN_INTERRUPT_AFTER_MICROMAMBA=1).
if [ ! -e "$PREFIX/micromamba" ]; then
    printf '#!/bin/sh\necho "micromamba stand-in: nothing to do" >&2\nexit 1\n' >"$PREFIX/micromamba"
    chmod 0755 "$PREFIX/micromamba"
fi
if [ "${STANDIN_INTERRUPT_AFTER_MICROMAMBA:-0}" = 1 ]; then
    echo "ERROR: interrupted after micromamba was written (STANDIN_INTERRUPT_AFTER_MICROMAMBA=1)" >&2
    exit 1
fi
ln -sfn "$PREFIX/micromamba" "$PREFIX/_conda"

# 1. The interpreter: a real Python with a real pip. A repair (-u) keeps a
#    working one, as the real installer keeps an intact python package.
if "$PREFIX/bin/python" -c 'import pip' >/dev/null 2>&1; then
    echo "Keeping the existing Python in $PREFIX"
else
    echo "Unpacking payload ..."
    "$HOST_PYTHON" -m venv "$PREFIX"
fi

if [ "${STANDIN_INTERRUPT_AFTER_PYTHON:-0}" = 1 ]; then
    echo "ERROR: interrupted after the Python was in place (STANDIN_INTERRUPT_AFTER_PYTHON=1)" >&2
    exit 1
fi

# 2. The front end: the conda_standin package (the payload) in
#    PREFIX/lib/conda-standin, and one launcher, run as conda or mamba (argv[0]).
echo "Installing base environment..."
mkdir -p "$PREFIX/condabin"
standin_write_payload "$PREFIX/lib/conda-standin"
FRONT_END="$PREFIX/bin/.conda.standin.$$"
{
    printf '#!%s/bin/python\n' "$PREFIX"
    printf '# Written by the %s stand-in installer (%s).\n' "$INSTALLER_NAME" "$STANDIN_RELEASE"
    printf 'STANDIN_ROOT_PREFIX = %s\n' "$("$PREFIX/bin/python" -c 'import sys; print(repr(sys.argv[1]))' "$PREFIX")"
    cat <<'STANDIN_LAUNCHER'
"""Stand-in conda / mamba front end (reforge test resource): see conda_standin."""
import os
import sys

# Nothing is written into the prefix when the front end runs (no __pycache__).
sys.dont_write_bytecode = True
# The package beside this prefix's bin/ (a prefix renamed aside keeps its own copy).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "lib", "conda-standin"))
from conda_standin import common  # noqa: E402
from conda_standin.cli import main  # noqa: E402

common.ROOT_PREFIX = STANDIN_ROOT_PREFIX  # noqa: F821 (written above by the installer)
sys.exit(main(sys.argv))
STANDIN_LAUNCHER
} > "$FRONT_END"
chmod 0755 "$FRONT_END"
cp -p "$FRONT_END" "$PREFIX/bin/mamba"
cp -p "$FRONT_END" "$PREFIX/condabin/conda"
mv -f "$FRONT_END" "$PREFIX/bin/conda"

# 3. Like the real installer (constructor's header.sh, register_envs), make
#    ~/.conda, under set -eu: a ~/.conda that cannot be created (a file, a
#    dangling link) aborts the install here, before conda-meta is written.
test -d ~/.conda || mkdir -p ~/.conda >/dev/null 2>/dev/null || test -d ~/.conda || mkdir ~/.conda

# 4. conda-meta records, history, profile scripts and .condarc. Like the real
#    payload, on -u or -f too: history and .condarc are replaced, not merged.
"$PREFIX/bin/conda" _standin-postinstall

echo "installation finished."
