"""Shell integration: init blocks, hooks, activate / deactivate.
"""

import os
import re
import sys

from . import common
from .common import CONDA_BLOCK, MAMBA_BLOCK, SHELLS, fail
from .prefix import is_env
from .config import _expand, env_name, home, load_config, locate_named
from .options import _parser, _set_json


def on_mac() -> bool:
    """macOS mode: STANDIN_PLATFORM=osx, or a Darwin kernel (the real tools ask the OS)."""
    wanted = os.environ.get("STANDIN_PLATFORM", "")
    return wanted.startswith("osx") or (not wanted and os.uname().sysname == "Darwin")


def rc_file(shell: str, follow_zdotdir: bool = True) -> str:
    """The rc file init edits: conda honours $ZDOTDIR, mamba 2 does not (follow_zdotdir=False).

    On macOS both write bash's block to ~/.bash_profile (conda initialize.py, libmamba shell_init.cpp).
    """
    if shell == "zsh":
        zdotdir = os.environ.get("ZDOTDIR") if follow_zdotdir else None
        return os.path.join(zdotdir or home(), ".zshrc")
    return os.path.join(home(), ".bash_profile" if on_mac() else ".bashrc")


def conda_block(shell: str, root: str) -> str:
    return f"""{CONDA_BLOCK[0]}
# !! Contents within this block are managed by 'conda init' !!
__conda_setup="$('{root}/bin/conda' 'shell.{shell}' 'hook' 2> /dev/null)"
if [ $? -eq 0 ]; then
    eval "$__conda_setup"
else
    if [ -f "{root}/etc/profile.d/conda.sh" ]; then
        . "{root}/etc/profile.d/conda.sh"
    else
        export PATH="{root}/bin:$PATH"
    fi
fi
unset __conda_setup
{CONDA_BLOCK[1]}"""


def mamba_block(shell: str, root: str, exe: str) -> str:
    return f"""{MAMBA_BLOCK[0]}
# !! Contents within this block are managed by 'mamba shell init' !!
export MAMBA_EXE='{exe}';
export MAMBA_ROOT_PREFIX='{root}';
__mamba_setup="$("$MAMBA_EXE" shell hook --shell {shell} --root-prefix "$MAMBA_ROOT_PREFIX" 2> /dev/null)"
if [ $? -eq 0 ]; then
    eval "$__mamba_setup"
else
    alias mamba="$MAMBA_EXE"  # Fallback on help from mamba activate
fi
unset __mamba_setup
{MAMBA_BLOCK[1]}"""


def _block_pattern(markers: tuple[str, str], with_newlines: bool) -> re.Pattern[str]:
    core = rf"^{re.escape(markers[0])}[^\n]*\n[\s\S]*?^{re.escape(markers[1])}[^\n\r]*"
    if with_newlines:
        # The newline before the block and the one ending it are the ones init added.
        return re.compile(rf"\n?{core}(?:\r?\n)?", re.MULTILINE)
    return re.compile(core, re.MULTILINE)


# conda's own patterns (conda/core/initialize.py, init_sh_user), non-Windows.
CONDA_INITIALIZE_RE_BLOCK = r"^# >>> conda initialize >>>(?:\n|\r\n)([\s\S]*?)# <<< conda initialize <<<(?:\n|\r\n)?"
CONDA_INIT_COMMENT = "# commented out by conda initialize"


def conda_edit_rc(content: str, block: str, reverse: bool, prefix: str) -> str:
    """What `conda init [--reverse]` does to a user rc file, unpleasant parts included.

    Forward: user lines that set up a conda or a virtualenv are commented out
    (`export PATH="…<prefix basename>/bin:$PATH"`, `. …/etc/profile.d/conda.sh` and a
    `conda activate` right after it, any `source …/bin/activate`), EVERY conda block,
    whatever prefix it points at, is replaced by this one, and a file without a block gets
    "\n" + block + "\n" appended (the block ends with its own newline). Reverse: every
    commented-out line is un-commented and every conda block is removed with the
    whitespace before it.
    """
    if reverse:
        content = re.sub(rf"#\s(.*?)\s*{CONDA_INIT_COMMENT}", r"\1", content, flags=re.MULTILINE)
        return re.sub(r"^\s*" + CONDA_INITIALIZE_RE_BLOCK, "", content, flags=re.DOTALL | re.MULTILINE)
    content = re.sub(
        rf"^[ \t]*?(export PATH=[\'\"].*?{os.path.basename(prefix)}\/bin:\$PATH[\'\"])",
        rf"# \1  {CONDA_INIT_COMMENT}",
        content,
        flags=re.MULTILINE,
    )
    content = re.sub(
        r"^[ \t]*[^#\n]?[ \t]*((?:source|\.) .*etc\/profile\.d\/conda\.sh.*?)\n(conda activate.*?)$",
        rf"# \1  {CONDA_INIT_COMMENT}\n# \2  {CONDA_INIT_COMMENT}",
        content,
        flags=re.MULTILINE,
    )
    content = re.sub(
        r"^[ \t]*[^#\n]?[ \t]*((?:source|\.) .*etc\/profile\.d\/conda\.sh.*?)$",
        rf"# \1  {CONDA_INIT_COMMENT}",
        content,
        flags=re.MULTILINE,
    )
    content = re.sub(
        r"^[ \t]*^[ \t]*[^#\n]?[ \t]*((?:source|\.) .*bin/activate.*?)$",
        rf"# \1  {CONDA_INIT_COMMENT}",
        content,
        flags=re.MULTILINE,
    )
    replace = "__CONDA_REPLACE_ME_123__"
    content = re.sub(CONDA_INITIALIZE_RE_BLOCK, replace, content, flags=re.MULTILINE).replace(replace, block)
    if CONDA_BLOCK[0] not in content:
        content += f"\n{block}\n"
    return content


def edit_rc(content: str, markers: tuple[str, str], block: str | None) -> str:
    """Put BLOCK in CONTENT (replace in place or append), or remove it when BLOCK is None."""
    if block is None:
        return _block_pattern(markers, True).sub("", content)
    pattern = _block_pattern(markers, False)
    if pattern.search(content):
        return pattern.sub(lambda _match: block, content, count=1)
    return content + ("\n" if content else "") + block + "\n"


def _read_text(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return handle.read()


def _write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        handle.write(text)


def apply_rc(path: str, markers: tuple[str, str], block: str | None, dry_run: bool, editor=None) -> bool:
    current = _read_text(path)
    if current is None and block is None:
        return False
    updated = editor(current or "") if editor else edit_rc(current or "", markers, block)
    if updated == (current or "") and current is not None:
        return False
    if not dry_run:
        _write_text(path, updated)
    return True


def cmd_init(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    parser.add_argument("shells", nargs="*")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--reverse", action="store_true")
    parser.add_argument("-d", "--dry-run", action="store_true")
    parser.add_argument("--user", action="store_true", default=True)
    parser.add_argument("--no-user", action="store_true")
    parser.add_argument("--system", action="store_true")
    parser.add_argument("--condabin", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    _set_json(args)
    shells = list(SHELLS) if args.all else (args.shells or ["bash"])
    unsupported = [shell for shell in shells if shell not in SHELLS]
    if unsupported:
        fail("CondaValueError", f"the stand-in initializes only bash and zsh, not: {', '.join(unsupported)}")
    if args.system:
        fail("CondaValueError", "the stand-in does not implement 'conda init --system'")
    for path in ("condabin/conda", "bin/conda", "bin/python", "etc/profile.d/conda.sh"):
        print(f"{'no change':<14}{os.path.join(common.ROOT_PREFIX, path)}")
    changed = False
    for shell in dict.fromkeys(shells):
        path = rc_file(shell)
        block = conda_block(shell, common.ROOT_PREFIX) + "\n"

        def editor(content: str, block: str = block) -> str:
            return conda_edit_rc(content, block, args.reverse, common.ROOT_PREFIX)

        modified = apply_rc(path, CONDA_BLOCK, None if args.reverse else block, args.dry_run, editor)
        changed = changed or modified
        print(f"{'modified' if modified else 'no change':<14}{path}")
    if changed:
        print("\n==> For changes to take effect, close and re-open your current shell. <==\n")
    else:
        print("No action taken.")
    return 0


def posix_hook(root: str, auto_activate: bool) -> str:
    """What 'conda shell.bash hook' prints: the conda shell function, then 'conda activate base'."""
    text = f"""export CONDA_EXE='{root}/bin/conda'
export _CE_M=''
export _CE_CONDA=''
export CONDA_PYTHON_EXE='{root}/bin/python'

# Stand-in conda shell integration (reforge test resource).
__conda_exe() (
    "$CONDA_EXE" $_CE_M $_CE_CONDA "$@"
)

__conda_hashr() {{
    if [ -n "${{ZSH_VERSION:+x}}" ]; then
        \\rehash
    else
        \\hash -r
    fi
}}

__conda_activate() {{
    \\local ask_conda
    ask_conda="$(PS1="${{PS1:-}}" __conda_exe shell.posix "$@")" || \\return
    \\eval "$ask_conda"
    __conda_hashr
}}

__conda_reactivate() {{
    \\local ask_conda
    ask_conda="$(PS1="${{PS1:-}}" __conda_exe shell.posix reactivate)" || \\return
    \\eval "$ask_conda"
    __conda_hashr
}}

conda() {{
    \\local cmd="${{1-__missing__}}"
    case "$cmd" in
        activate|deactivate)
            __conda_activate "$@"
            ;;
        install|update|upgrade|remove|uninstall)
            __conda_exe "$@" || \\return
            __conda_reactivate
            ;;
        *)
            __conda_exe "$@"
            ;;
    esac
}}

if [ -z "${{CONDA_SHLVL+x}}" ]; then
    \\export CONDA_SHLVL=0
    PATH="{root}/condabin${{PATH:+":${{PATH}}"}}"
    \\export PATH
    if [ -z "${{PS1+x}}" ]; then
        PS1=
    fi
fi
"""
    if auto_activate:
        text += "conda activate base\n"
    return text


def mamba_hook(root: str, exe: str, shell: str) -> str:
    """What 'mamba shell hook' prints: the mamba shell function (activate / deactivate)."""
    return f"""export MAMBA_EXE='{exe}'
export MAMBA_ROOT_PREFIX='{root}'

# Stand-in mamba shell integration (reforge test resource).
__mamba_exe() (
    "$MAMBA_EXE" "$@"
)

__mamba_hashr() {{
    if [ -n "${{ZSH_VERSION:+x}}" ]; then
        \\rehash
    else
        \\hash -r
    fi
}}

__mamba_xctivate() {{
    \\local ask_mamba
    ask_mamba="$(PS1="${{PS1:-}}" __mamba_exe shell "$@" --shell {shell})" || \\return
    \\eval "$ask_mamba"
    __mamba_hashr
}}

mamba() {{
    \\local cmd="${{1-__missing__}}"
    case "$cmd" in
        activate|reactivate|deactivate)
            __mamba_xctivate "$@"
            ;;
        install|update|upgrade|remove|uninstall)
            __mamba_exe "$@" || \\return
            __mamba_xctivate reactivate
            ;;
        *)
            __mamba_exe "$@"
            ;;
    esac
}}

if [ -z "${{CONDA_SHLVL+x}}" ]; then
    \\export CONDA_SHLVL=0
fi
"""


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _path_without(path: str, directory: str) -> list[str]:
    parts = path.split(":") if path else []
    if directory in parts:
        parts.remove(directory)
    return parts


def activation(action: str, target: str | None, root: str) -> str:
    """Shell code that activates TARGET (or deactivates), computed from the caller's environment."""
    config = load_config()
    env = os.environ
    shlvl = int(env.get("CONDA_SHLVL", "0") or 0)
    current = env.get("CONDA_PREFIX", "")
    ps1 = env.get("PS1", "")
    old_modifier = env.get("CONDA_PROMPT_MODIFIER", "")
    if old_modifier and ps1.startswith(old_modifier):
        ps1 = ps1[len(old_modifier) :]
    path = env.get("PATH", "")
    lines: list[str] = []
    if action == "reactivate":
        return ""
    if action == "deactivate":
        if shlvl <= 0 or not current:
            return ""
        parts = _path_without(path, os.path.join(current, "bin"))
        new_level = shlvl - 1
        if new_level == 0:
            lines += [
                f"export PATH={_quote(':'.join(parts))}",
                "unset CONDA_PREFIX",
                "unset CONDA_DEFAULT_ENV",
                "unset CONDA_PROMPT_MODIFIER",
                "export CONDA_SHLVL='0'",
            ]
            if config["changeps1"]:
                lines.insert(0, f"PS1={_quote(ps1)}")
            return "\n".join(lines) + "\n"
        previous = env.get(f"CONDA_PREFIX_{new_level}", root)
        parts.insert(0, os.path.join(previous, "bin"))
        name = env_name(previous, config)
        modifier = f"({name}) "
        lines += [
            f"export PATH={_quote(':'.join(parts))}",
            f"export CONDA_PREFIX={_quote(previous)}",
            f"unset CONDA_PREFIX_{new_level}",
            f"export CONDA_SHLVL='{new_level}'",
            f"export CONDA_DEFAULT_ENV={_quote(name)}",
            f"export CONDA_PROMPT_MODIFIER={_quote(modifier)}",
        ]
        if config["changeps1"]:
            lines.insert(0, f"PS1={_quote(modifier + ps1)}")
        return "\n".join(lines) + "\n"
    # activate
    if not target or target in ("base", "root"):
        prefix = root
    elif "/" in target:
        prefix = _expand(target)
    else:
        prefix = locate_named(target, config) or ""
    if not prefix or not is_env(prefix):
        if common.PROG == "mamba":
            missing = prefix or os.path.join(root, "envs", target or "")
            fail("EnvironmentLocationNotFound", f"Cannot activate, prefix does not exist at: '{missing}'")
        fail(
            "EnvironmentNameNotFound",
            f"Could not find conda environment: {target}\n"
            "You can list all discoverable environments with `conda info --envs`.",
        )
    if shlvl > 0 and current:
        parts = path.split(":") if path else []
        old_bin = os.path.join(current, "bin")
        if old_bin in parts:
            parts[parts.index(old_bin)] = os.path.join(prefix, "bin")
        else:
            parts.insert(0, os.path.join(prefix, "bin"))
        if os.path.normpath(current) != os.path.normpath(prefix):
            lines.append(f"export CONDA_PREFIX_{shlvl}={_quote(current)}")
            new_level = shlvl + 1
        else:
            new_level = shlvl
    else:
        parts = [os.path.join(prefix, "bin")] + _path_without(path, os.path.join(prefix, "bin"))
        new_level = 1
    name = env_name(prefix, config)
    modifier = f"({name}) "
    lines = (
        ([f"PS1={_quote(modifier + ps1)}"] if config["changeps1"] else [])
        + [
            f"export PATH={_quote(':'.join(dict.fromkeys(parts)))}",
            f"export CONDA_PREFIX={_quote(prefix)}",
            f"export CONDA_SHLVL='{new_level}'",
            f"export CONDA_DEFAULT_ENV={_quote(name)}",
            f"export CONDA_PROMPT_MODIFIER={_quote(modifier)}",
        ]
        + lines
    )
    return "\n".join(lines) + "\n"


def cmd_shell_posix(prog: str, command: str, argv: list[str]) -> int:
    shell = command.split(".", 1)[1]
    if shell not in ("posix", "bash", "zsh"):
        fail("CondaValueError", f"the stand-in has no shell integration for {shell}")
    if not argv:
        fail("ArgumentError", f"usage: conda {command} {{hook,activate,deactivate,reactivate}}")
    action, rest = argv[0], [a for a in argv[1:] if not a.startswith("-")]
    if action == "hook":
        sys.stdout.write(posix_hook(common.ROOT_PREFIX, bool(load_config()["auto_activate"])))
        return 0
    if action in ("activate", "deactivate", "reactivate"):
        sys.stdout.write(activation(action, rest[0] if rest else None, common.ROOT_PREFIX))
        return 0
    fail("ArgumentError", f"unknown shell action: {action}")


def cmd_shell_mamba(prog: str, command: str, argv: list[str]) -> int:
    parser = _parser(prog, command)
    parser.add_argument("action", choices=["init", "deinit", "reinit", "hook", "activate", "deactivate", "reactivate"])
    parser.add_argument("env", nargs="?")
    parser.add_argument("-s", "--shell")
    parser.add_argument("-r", "--root-prefix")
    parser.add_argument("-p", "--prefix")
    parser.add_argument("-n", "--name")
    parser.add_argument("-d", "--dry-run", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-y", "--yes", action="store_true")
    args = parser.parse_args(argv)
    _set_json(args)
    shell = args.shell or os.path.basename(os.environ.get("SHELL", "bash")) or "bash"
    if shell not in ("bash", "zsh", "posix"):
        fail("CondaValueError", f"the stand-in has no shell integration for {shell}")
    root = _expand(args.root_prefix or os.environ.get("MAMBA_ROOT_PREFIX") or common.ROOT_PREFIX)
    exe = os.path.join(common.ROOT_PREFIX, "bin", "mamba")
    if args.action == "hook":
        sys.stdout.write(mamba_hook(root, exe, "bash" if shell == "posix" else shell))
        return 0
    if args.action in ("activate", "deactivate", "reactivate"):
        target = args.prefix or args.name or args.env
        sys.stdout.write(activation(args.action, target, root))
        return 0
    if shell == "posix":
        fail("CondaValueError", "shell init needs bash or zsh")
    path = rc_file(shell, follow_zdotdir=False)
    if args.action == "deinit":
        print(
            f'Removing the following in your "{path}" file\n# >>> mamba initialize >>>\n...\n'
            "# <<< mamba initialize <<<"
        )
        apply_rc(path, MAMBA_BLOCK, None, args.dry_run)
        return 0
    block = mamba_block(shell, root, exe)
    print(
        f'Modifying RC file "{path}"\nGenerating config for root prefix "{root}"\n'
        f'Setting mamba executable to: "{exe}"\nAdding (or replacing) the following in your "{path}" file\n'
    )
    print(block)
    if args.dry_run:
        print("Running `shell init` in dry-run mode")
    apply_rc(path, MAMBA_BLOCK, block, args.dry_run)
    return 0


def cmd_activate_binary(prog: str, command: str, argv: list[str]) -> int:
    if prog == "mamba":
        sys.stderr.write(
            "\n'mamba' is running as a subprocess and can't modify the parent shell.\n"
            "Thus you must initialize your shell before using activate and deactivate.\n\n"
            "To initialize the current bash shell, run:\n"
            '    $ eval "$(mamba shell hook --shell bash)"\n'
            "and then activate or deactivate with:\n    $ mamba activate\n"
            "To automatically initialize all future (bash) shells, run:\n"
            "    $ mamba shell init --shell bash --root-prefix=~/.local/share/mamba\n\n"
        )
        return 1
    fail("CondaError", "Run 'conda init' before 'conda activate'")
