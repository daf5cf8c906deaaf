"""Tests of the prerun role's templates: rendered from the role defaults, checked with
``bash -n``, then run for real in temporary trees.

pre-run.sh is sourced the way Paperspace's /run.sh does it, by a caller running
``set -euo pipefail``; the caller must always go on, with its working directory,
options, variables, functions and traps untouched.
"""

from __future__ import annotations

import collections
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest
from ansible_collections.reforge.workstation.tests.unit.treedata import data_checksum as checksum
from ansible_collections.reforge.workstation.tests.unit.treedata import snapshot

if TYPE_CHECKING:
    from conftest import Workspace

# What a sourced file may legitimately change in the caller: bash's own bookkeeping.
VOLATILE = (
    r"^declare -[-a-zA-Z]* (BASH_[A-Z_]*|_|LINENO|RANDOM|SRANDOM|SECONDS|EPOCHREALTIME|EPOCHSECONDS"
    r"|PIPESTATUS|FUNCNAME|BASHPID|COMP_WORDBREAKS|OLDPWD)="
)

CALLER = r"""
set -euo pipefail
shopt -s extglob
umask 0027
trap 'echo caller-saw-an-error' ERR
caller_function() { :; }
caller_variable="kept"
cd "$CALLER_CWD"
eval "${CALLER_PRELUDE:-}"
dump() {
  { set +o; shopt -p; } >"$OUT.$1.opts"
  declare -p | grep -Ev "$VOLATILE" >"$OUT.$1.vars"
  declare -F >"$OUT.$1.funcs"
  trap -p >"$OUT.$1.traps"
  pwd >"$OUT.$1.cwd"
  umask >"$OUT.$1.umask"
}
dump before
. "$SCRIPT"
dump after
echo "caller went on"
"""


def as_user(argv: list[str], user: tuple[int, int] | None) -> list[str]:
    """Prefix argv so it runs as user (a no-op when that is already the current user)."""
    if user is None or os.geteuid() == user[0]:
        return argv
    uid, gid = user
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"] + argv


def source_as_caller(ws: "Workspace", script: Path | None = None, user: tuple[int, int] | None = None,
                     env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Source the script from a `set -euo pipefail` caller; assert the caller went on unchanged."""
    out = ws.root / "caller"
    caller_cwd = ws.root / "caller-cwd"
    caller_cwd.mkdir(exist_ok=True)
    if user is not None:
        os.chown(ws.root, user[0], user[1])
        os.chown(caller_cwd, user[0], user[1])
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ws.home),
        "SCRIPT": str(script or ws.script),
        "OUT": str(out),
        "CALLER_CWD": str(caller_cwd),
        "VOLATILE": VOLATILE,
        **(env or {}),
    }
    argv = as_user(["bash", "--norc", "--noprofile", "-c", CALLER], user)
    result = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("caller went on"), result.stdout + result.stderr
    assert "caller-saw-an-error" not in result.stdout
    for part in ("opts", "vars", "funcs", "traps", "cwd", "umask"):
        before = Path(f"{out}.before.{part}").read_text()
        after = Path(f"{out}.after.{part}").read_text()
        assert after == before, f"the caller's {part} changed"
    assert Path(f"{out}.after.cwd").read_text().strip() == str(caller_cwd)
    return result


def run_direct(argv: list[str], env: dict[str, str] | None = None, user: tuple[int, int] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    return subprocess.run(as_user(argv, user), capture_output=True, text=True, env=full_env,
                          timeout=timeout, check=False)


# Data helpers -----------------------------------------------------------------
def fill_dir(path: Path, tag: str) -> None:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text(f"notes from {tag}\n")
    (path / "sub" / "blob.bin").write_bytes(os.urandom(2048) + tag.encode())
    (path / "sub" / "notes-link").symlink_to("../notes.txt")


def make_side(path: Path, kind: str, tag: str) -> None:
    if kind == "dir":
        fill_dir(path, tag)
    else:
        path.write_bytes(f"{tag}\n".encode() + os.urandom(64))


def backups_of(ws: "Workspace", home_path: Path) -> list[Path]:
    backup = ws.state / "backup"
    if not backup.is_dir():
        return []
    relative = str(home_path).lstrip("/")
    return sorted(p for stamp in backup.iterdir() for p in stamp.glob(relative + "*"))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_of(tree: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """A snapshot without its folders' modes."""
    return {key: value if value[0] != "dir" else ("dir",) for key, value in tree.items()}


def link_entries_of(dirs: list[str], files: list[str], modes: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Link entries as storage_links_default_entries takes them, from names and modes."""
    modes = modes or {}
    return [{"name": name, "kind": kind, **({"mode": modes[name]} if name in modes else {})}
            for names, kind in ((dirs, "dir"), (files, "file")) for name in names]


def small_workspace(ws: "Workspace", **extra: Any) -> Path:
    """Render with a short entry list: two directories and one file."""
    return ws.render(storage_links_default_entries=link_entries_of([".local", ".ssh"], [".gitconfig"], {".ssh": "0700"}), **extra)


# Rendering ----------------------------------------------------------------------
@pytest.mark.parametrize("template", ["storage/pre-run.sh.j2", "storage/bash.local.j2"])
def test_templates_render_from_defaults_start_managed_and_parse(
    render_template: Callable[..., str], ansible_managed: str, tmp_path: Path, template: str
) -> None:
    text = render_template(template)
    assert text.startswith(f"# {ansible_managed}\n")
    assert "{{" not in text and "{%" not in text
    rendered = tmp_path / "out.sh"
    rendered.write_text(text)
    check = subprocess.run(["bash", "-n", str(rendered)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_default_paths_and_entries_are_the_paperspace_ones(render_template: Callable[..., str]) -> None:
    text = render_template("storage/pre-run.sh.j2")
    assert "__reforge_s=${REFORGE_STORAGE_DIR:-/storage}" in text
    assert "__reforge_h=${REFORGE_HOME_DIR:-/root}" in text
    assert "__reforge_n=${REFORGE_NOTEBOOKS_DIR:-/notebooks}" in text
    assert '"dirs": [".local", ".ssh", ".config", ".ipython", ".jupyter", ".fastai", ".kaggle", ".conda"]' in text
    assert '"files": [".gitconfig", ".git-credentials", ".bash_history"]' in text


def test_the_layers_of_link_entries_drive_the_entry_list_and_modes(workspace: "Workspace") -> None:
    # The storage_links role's layers, combined by name: a later one updates the keys it sets,
    # state: absent drops an entry, and the defaults stay unless dropped.
    workspace.render(
        storage_links_entries=[{"name": ".c"}, {"name": ".d", "kind": "file", "mode": "0600"}],
        storage_links_group_entries=[{"name": ".kaggle", "state": "absent"}, {"name": ".ssh", "mode": "0750"}],
        storage_links_host_entries=[{"name": ".c", "kind": "file"}, {"name": ".bash_history", "state": "absent"}],
    )
    listed = run_direct(["bash", str(workspace.script)], env={"REFORGE_PRERUN_STAGE": "list"})
    assert listed.stdout.split("\n") == [
        "dir .local", "dir .ssh", "dir .config", "dir .ipython", "dir .jupyter", "dir .fastai", "dir .conda",
        "file .gitconfig", "file .git-credentials", "file .c", "file .d", "",
    ]
    text = workspace.script.read_text()
    assert '"modes": {".ssh": "0750", ".git-credentials": "0600", ".d": "0600"}' in text


def test_paths_with_spaces_and_quotes_survive_rendering(tmp_path: Path, make_workspace: Any) -> None:
    ws = make_workspace(tmp_path / "it's a \"dir\" $HOME")
    fill_dir(ws.home / ".local", "home")
    small_workspace(ws)
    source_as_caller(ws)
    assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")
    assert (ws.storage / ".local" / "notes.txt").is_file()


# Sourced safety -------------------------------------------------------------------
def test_first_start_links_everything_and_the_caller_goes_on(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    (ws.home / ".gitconfig").write_text("[user]\n")
    fill_dir(ws.notebooks / "git", "repo")
    ws.render()
    before, _ = checksum([ws.home / ".local", ws.home / ".gitconfig", ws.notebooks / "git"])

    source_as_caller(ws)

    for name in (".local", ".ssh", ".config", ".ipython", ".jupyter", ".fastai", ".kaggle", ".conda"):
        assert os.readlink(ws.home / name) == str(ws.storage / name)
        assert (ws.storage / name).is_dir()
    for name in (".gitconfig", ".git-credentials", ".bash_history"):
        assert os.readlink(ws.home / name) == str(ws.storage / name)
        assert (ws.storage / name).is_file()
    assert os.readlink(ws.notebooks / "git") == str(ws.storage / "git")
    after, _ = checksum([ws.storage / ".local", ws.storage / ".gitconfig", ws.storage / "git"])
    assert after == before
    assert mode_of(ws.storage / ".ssh") == 0o700
    assert mode_of(ws.storage / ".git-credentials") == 0o600
    assert "done in" in ws.log.read_text()


def test_storage_missing(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    ws.render()
    shutil.rmtree(ws.storage)
    home_before = snapshot(ws.home)

    result = source_as_caller(ws)

    assert "is missing; nothing was linked" in result.stderr
    assert not ws.storage.exists()
    assert snapshot(ws.home) == home_before


def test_storage_read_only_for_a_non_root_user(make_workspace: Any, nonroot_user: tuple[int, int]) -> None:
    root = Path(tempfile.mkdtemp(prefix="prerun-ro-", dir="/tmp"))
    try:
        ws = make_workspace(root)
        fill_dir(ws.home / ".local", "home")
        (ws.storage / ".gitconfig").write_text("[user]\n")
        small_workspace(ws)
        for path in [root, *root.rglob("*")]:
            os.lchown(path, *nonroot_user)
        root.chmod(0o755)
        ws.storage.chmod(0o555)
        before, _ = checksum([ws.home / ".local", ws.storage / ".gitconfig"])
        storage_before = snapshot(ws.storage)

        result = source_as_caller(ws, user=nonroot_user)

        assert "read-only storage?" in result.stderr
        assert snapshot(ws.storage) == storage_before
        # Nothing could move into storage, so home keeps its data; the existing storage entry is linked.
        assert checksum([ws.home / ".local", ws.storage / ".gitconfig"])[0] == before
        assert (ws.home / ".local").is_dir() and not (ws.home / ".local").is_symlink()
        assert os.readlink(ws.home / ".gitconfig") == str(ws.storage / ".gitconfig")
        assert not (ws.home / ".ssh").exists()
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def remount_read_only() -> Iterator[Callable[[Path], None]]:
    """Bind-mount a folder read-only over itself (root only); unmounted afterwards."""
    mounted: list[str] = []

    def remount(folder: Path) -> None:
        if os.geteuid() != 0:
            pytest.skip("a read-only bind mount needs root; the non-root test covers read-only storage")
        first = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, check=False)
        if first.returncode != 0:
            pytest.skip(f"mount --bind is not permitted here: {first.stderr!r}")
        mounted.append(str(folder))
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)

    yield remount
    for folder in mounted:
        subprocess.run(["umount", folder], check=False)


def test_storage_on_a_read_only_mount(workspace: "Workspace", remount_read_only: Callable[[Path], None]) -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    fill_dir(ws.storage / ".ssh", "storage")
    (ws.storage / ".gitconfig").write_text("[user]\n")
    small_workspace(ws)
    before, _ = checksum([ws.home / ".local", ws.storage / ".ssh"])
    remount_read_only(ws.storage)
    with pytest.raises(OSError):
        (ws.storage / "probe").write_text("x")

    result = source_as_caller(ws)
    assert "read-only storage?" in result.stderr
    assert checksum([ws.home / ".local", ws.storage / ".ssh"])[0] == before
    assert not (ws.home / ".local").is_symlink()
    assert os.readlink(ws.home / ".ssh") == str(ws.storage / ".ssh")
    assert os.readlink(ws.home / ".gitconfig") == str(ws.storage / ".gitconfig")


def test_broken_links_on_both_sides(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.storage / ".local", "storage")
    (ws.home / ".local").symlink_to(ws.root / "gone" / ".local")
    (ws.home / ".gitconfig").symlink_to(ws.root / "gone" / ".gitconfig")
    (ws.storage / ".ssh").symlink_to(ws.root / "gone" / ".ssh")  # a broken link on the storage side
    fill_dir(ws.home / ".ssh", "home")
    small_workspace(ws)
    home_ssh_before = checksum([ws.home / ".ssh"])

    source_as_caller(ws)

    assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")
    assert os.readlink(ws.home / ".gitconfig") == str(ws.storage / ".gitconfig")
    # The storage side is broken: the home copy stays where it is, the reason is logged.
    assert (ws.home / ".ssh").is_dir() and not (ws.home / ".ssh").is_symlink()
    assert checksum([ws.home / ".ssh"]) == home_ssh_before
    assert (ws.storage / ".ssh").is_symlink()
    assert "on the storage side is a symbolic link" in ws.log.read_text()
    assert f"(it pointed to {ws.root / 'gone' / '.local'})" in ws.log.read_text()


def test_a_hostile_caller_environment_does_not_reach_the_worker(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    small_workspace(ws)
    marker = ws.root / "bash_env-ran"
    bash_env = ws.root / "bash_env.sh"
    bash_env.write_text(f"touch {marker}\n")
    # Set after the caller started, so only the worker could pick them up.
    hostile = (
        "mv() { echo hijacked; return 1; }; export -f mv; "
        "ln() { return 1; }; export -f ln; "
        "export SHELLOPTS; "
        f"export BASH_ENV='{bash_env}' GLOBIGNORE='*' REFORGE_PRERUN_STAGE=work; "
    )
    env = {"CALLER_PRELUDE": hostile}

    source_as_caller(ws, env=env)

    assert not marker.exists()
    assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")
    assert (ws.storage / ".local" / "notes.txt").is_file()


def test_sourced_by_posix_sh(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    small_workspace(ws)
    # A POSIX sh has no BASH_SOURCE, so the file must sit where it was rendered for: in storage.
    in_storage = ws.storage / "pre-run.sh"
    shutil.copy(ws.script, in_storage)
    result = run_direct(["sh", "-c", f"set -eu; . '{in_storage}'; echo sh went on"])
    assert result.returncode == 0 and result.stdout.strip() == "sh went on"
    assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")


def test_executed_directly(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws)
    result = run_direct(["bash", str(ws.script)])
    assert result.returncode == 0
    assert os.readlink(ws.home / ".ssh") == str(ws.storage / ".ssh")


def test_the_timeout_bounds_the_foreground(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws, prerun_timeout=1, prerun_lock_timeout=30)
    ws.state.mkdir()
    holder = subprocess.Popen(["flock", str(ws.state / "pre-run.lock"), "sleep", "20"])
    try:
        time.sleep(0.3)
        started = time.monotonic()
        source_as_caller(ws)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert not (ws.home / ".ssh").exists()


def test_runs_as_a_non_root_user_with_storage_it_owns(make_workspace: Any, nonroot_user: tuple[int, int]) -> None:
    root = Path(tempfile.mkdtemp(prefix="prerun-user-", dir="/tmp"))
    try:
        ws = make_workspace(root)
        fill_dir(ws.home / ".local", "home")
        fill_dir(ws.home / ".ssh", "home")
        (ws.home / ".ssh" / "id_ed25519").write_text("key\n")
        (ws.home / ".ssh" / "id_ed25519").chmod(0o644)
        ws.render()
        for path in [root, *root.rglob("*")]:
            os.lchown(path, *nonroot_user)
        root.chmod(0o755)
        before, _ = checksum([ws.home / ".local", ws.home / ".ssh"])

        source_as_caller(ws, user=nonroot_user)

        assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")
        assert checksum([ws.storage / ".local", ws.storage / ".ssh"])[0] == before
        assert mode_of(ws.storage / ".ssh" / "id_ed25519") == 0o600
        assert (ws.storage / ".local").stat().st_uid == nonroot_user[0]
        assert ws.log.stat().st_uid == nonroot_user[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)


# The migration matrix ---------------------------------------------------------------
KINDS = ("dir", "file")
HOME_STATES = ("absent", "real_dir", "real_file", "correct_link", "wrong_link", "broken_link")
STORAGE_STATES = ("absent", "empty", "content")
CASES = [(kind, home, store) for kind in KINDS for home in HOME_STATES for store in STORAGE_STATES]
CASE_IDS = [
    f"case{index:02d}of{len(CASES)}-kind={kind}-home={home}-storage={store}"
    for index, (kind, home, store) in enumerate(CASES, start=1)
]


def entry_name(case_id: str) -> str:
    return "." + case_id.split("-kind=")[0] + "-" + case_id.split("-kind=")[1].replace("=", "_")


class Matrix:
    """All 36 cases side by side in one home and one storage, linked by a single start."""

    def __init__(self, ws: "Workspace") -> None:
        self.ws = ws
        self.before: dict[str, tuple[str, collections.Counter[tuple[str, str, str]]]] = {}
        self.home_before: dict[str, dict[str, tuple[Any, ...]]] = {}
        self.storage_before: dict[str, dict[str, tuple[Any, ...]]] = {}
        dirs, files = [], []
        for (kind, home_state, storage_state), case_id in zip(CASES, CASE_IDS):
            name = entry_name(case_id)
            (dirs if kind == "dir" else files).append(name)
            self.build(name, kind, home_state, storage_state)
            self.before[case_id] = checksum(self.roots(name))
            self.home_before[case_id] = snapshot(ws.home / name) if (ws.home / name).is_dir() and not (
                ws.home / name).is_symlink() else {}
            self.storage_before[case_id] = snapshot(ws.storage / name) if (ws.storage / name).is_dir() else {}
        ws.render(storage_links_default_entries=link_entries_of(dirs, files), prerun_notebooks_git=False)

    def build(self, name: str, kind: str, home_state: str, storage_state: str) -> None:
        home, store = self.ws.home / name, self.ws.storage / name
        if storage_state == "empty":
            store.mkdir() if kind == "dir" else store.touch()
        elif storage_state == "content":
            make_side(store, kind, "storage")
        if home_state == "real_dir":
            fill_dir(home, "home")
        elif home_state == "real_file":
            home.write_bytes(b"home file " + os.urandom(64))
        elif home_state == "correct_link":
            home.symlink_to(store)
        elif home_state == "wrong_link":
            (self.ws.root / "elsewhere").mkdir(exist_ok=True)
            make_side(self.ws.root / "elsewhere" / name, kind, "elsewhere")
            home.symlink_to(self.ws.root / "elsewhere" / name)
        elif home_state == "broken_link":
            home.symlink_to(self.ws.root / "nowhere" / name)

    def roots(self, name: str) -> list[Path]:
        return [self.ws.home / name, self.ws.storage / name, self.ws.root / "elsewhere" / name] + backups_of(
            self.ws, self.ws.home / name)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, make_workspace: Any) -> Matrix:
    ws = make_workspace(tmp_path_factory.mktemp("matrix"))
    built = Matrix(ws)
    source_as_caller(ws)
    built.after_first = snapshot(ws.root, skip=("storage/.reforge/pre-run.log",))  # type: ignore[attr-defined]
    built.log_after_first = ws.log.read_text()  # type: ignore[attr-defined]
    source_as_caller(ws)
    return built


def test_the_matrix_has_every_case() -> None:
    assert len(CASES) == len(set(CASE_IDS)) == 36


def test_the_matrix_as_a_whole_keeps_every_byte_and_then_is_steady(matrix: Matrix) -> None:
    ws = matrix.ws
    # Every data file in the whole tree lies in some case's home, storage, link target or backup ...
    case_roots = [root for case_id in CASE_IDS for root in matrix.roots(entry_name(case_id))]
    own_files = {ws.script, ws.log, ws.state / "pre-run.lock"}
    for folder, _dirs, files in os.walk(ws.root):
        for item in files:
            full = Path(folder) / item
            if full in own_files or full.name.startswith("caller."):
                continue
            assert any(full == root or root in full.parents for root in case_roots), f"stray file {full}"
    # ... and the per-case checksums, summed, match the ones taken before the start.
    total_before = sum((matrix.before[c][1] for c in CASE_IDS), collections.Counter())
    total_after = sum((checksum(matrix.roots(entry_name(c)))[1] for c in CASE_IDS), collections.Counter())
    assert total_after == total_before
    # The second start changed nothing at all.
    assert snapshot(matrix.ws.root, skip=("storage/.reforge/pre-run.log", "caller")) == {
        k: v for k, v in matrix.after_first.items() if not k.startswith("caller")  # type: ignore[attr-defined]
    }
    # Every entry was the right link, so the second start took the fast path: no process, no log line.
    assert matrix.ws.log.read_text() == matrix.log_after_first  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "home_state", "storage_state"), CASES, ids=CASE_IDS)
def test_the_matrix_case_converges_without_losing_a_byte(
    matrix: Matrix, kind: str, home_state: str, storage_state: str, request: pytest.FixtureRequest
) -> None:
    case_id = CASE_IDS[CASES.index((kind, home_state, storage_state))]
    name = entry_name(case_id)
    ws = matrix.ws
    home, store = ws.home / name, ws.storage / name

    assert home.is_symlink() and os.readlink(home) == str(store)
    assert (store.is_dir() if kind == "dir" else store.is_file()) and not store.is_symlink()
    after_sum, after_items = checksum(matrix.roots(name))
    assert after_items == matrix.before[case_id][1]
    assert after_sum == matrix.before[case_id][0]

    home_kind = {"real_dir": "dir", "real_file": "file"}.get(home_state)
    backups = backups_of(ws, home)
    if home_kind == kind and storage_state != "content":
        assert backups == []
        if home_kind == "dir":
            assert snapshot(store) == matrix.home_before[case_id]
    elif home_kind is not None:
        assert len(backups) == 1
        if home_kind == "dir":
            # The backup holds the colliding items as they were; its folders are created private (0700).
            assert files_of(snapshot(backups[0])) == files_of(matrix.home_before[case_id])
        if storage_state == "content" and kind == "dir":
            assert snapshot(store) == matrix.storage_before[case_id]
    else:
        assert backups == []


# Concurrency ---------------------------------------------------------------------------
@pytest.mark.parametrize("lock", ["flock", "mkdir"])
@pytest.mark.parametrize("round_", range(5), ids=lambda r: f"round{r + 1}of5")
def test_two_concurrent_starts_end_consistent(workspace: "Workspace", lock: str, round_: int) -> None:
    ws = workspace
    names = [f".d{i}" for i in range(12)]
    for name in names:
        fill_dir(ws.home / name, "home")
    ws.render(storage_links_default_entries=link_entries_of(names, []), prerun_notebooks_git=False)
    before, _ = checksum([ws.home / n for n in names])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if lock == "mkdir":
        env["REFORGE_PRERUN_NO_FLOCK"] = "1"
    caller = f"set -euo pipefail; . '{ws.script}'; echo went on"
    starts = [subprocess.Popen(["bash", "-c", caller], stdout=subprocess.PIPE, env=env, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in starts]

    assert all(out.strip() == "went on" for out in outputs)
    assert all(p.returncode == 0 for p in starts)
    for name in names:
        assert os.readlink(ws.home / name) == str(ws.storage / name)
    assert checksum([ws.storage / n for n in names])[0] == before
    assert not (ws.state / "backup").exists(), "a start saw the other one half-way"
    log = ws.log.read_text()
    assert log.count("moved ") == len(names)
    assert log.count("done in") == 2
    assert not (ws.state / "pre-run.lock.d").exists()


def test_the_flock_is_waited_for(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws)
    ws.state.mkdir()
    holder = subprocess.Popen(["flock", str(ws.state / "pre-run.lock"), "sleep", "1.5"])
    time.sleep(0.3)
    started = time.monotonic()
    source_as_caller(ws)
    waited = time.monotonic() - started
    holder.wait()
    assert waited >= 1.0
    assert os.readlink(ws.home / ".ssh") == str(ws.storage / ".ssh")


def test_a_mkdir_lock_left_by_a_dead_process_is_taken_over(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws, prerun_lock_timeout=30)
    lock = ws.state / "pre-run.lock.d"
    lock.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (lock / "owner").write_text(f"{dead.pid} {os.uname().nodename}\n")
    started = time.monotonic()
    source_as_caller(ws, env={"REFORGE_PRERUN_NO_FLOCK": "1"})
    assert time.monotonic() - started < 5
    assert f"took over the lock left by pid {dead.pid}" in ws.log.read_text()
    assert not lock.exists()
    assert os.readlink(ws.home / ".ssh") == str(ws.storage / ".ssh")


def test_a_mkdir_lock_whose_lease_expired_is_taken_over(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws, prerun_lock_timeout=1)
    lock = ws.state / "pre-run.lock.d"
    lock.mkdir(parents=True)
    # Alive (this test process) but its lease ran out a second ago.
    (lock / "owner").write_text(f"{os.getpid()} {os.uname().nodename} {int(time.time()) - 1}\n")
    started = time.monotonic()
    source_as_caller(ws, env={"REFORGE_PRERUN_NO_FLOCK": "1"})
    assert time.monotonic() - started < 10
    assert f"took over the lock of pid {os.getpid()} on {os.uname().nodename}: its lease expired" in ws.log.read_text()
    assert os.readlink(ws.home / ".ssh") == str(ws.storage / ".ssh")


# Key modes, notebooks, log ----------------------------------------------------------------
def test_key_modes_are_fixed(workspace: "Workspace") -> None:
    ws = workspace
    ssh = ws.storage / ".ssh"
    ssh.mkdir(mode=0o755)
    ssh.chmod(0o755)
    files = {"id_ed25519": 0o644, "id_ed25519.pub": 0o600, "config": 0o666, "known_hosts": 0o644,
             "id_rsa": 0o400}
    for name, mode in files.items():
        (ssh / name).write_text(name)
        (ssh / name).chmod(mode)
    small_workspace(ws)

    source_as_caller(ws)

    assert mode_of(ssh) == 0o700
    assert mode_of(ssh / "id_ed25519") == 0o600
    assert mode_of(ssh / "id_rsa") == 0o600
    assert mode_of(ssh / "id_ed25519.pub") == 0o644
    assert mode_of(ssh / "config") == 0o644
    assert mode_of(ssh / "known_hosts") == 0o644
    assert "set mode 0600 on" in ws.log.read_text()


def test_notebooks_git_is_moved_and_linked(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.notebooks / "git" / "repo", "clone")
    before = snapshot(ws.notebooks / "git")
    small_workspace(ws)
    source_as_caller(ws)
    assert os.readlink(ws.notebooks / "git") == str(ws.storage / "git")
    assert snapshot(ws.storage / "git") == before


def test_missing_notebooks_dir_is_logged_not_fatal(workspace: "Workspace") -> None:
    ws = workspace
    shutil.rmtree(ws.notebooks)
    small_workspace(ws)
    source_as_caller(ws)
    assert "skipped the git link" in ws.log.read_text()
    assert os.readlink(ws.home / ".ssh") == str(ws.storage / ".ssh")


def test_the_log_is_written_and_rotated(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws, prerun_log_max_bytes=200, prerun_log_keep=2)
    for _ in range(8):
        # A missing link makes each start do work (a start with nothing to do writes no log).
        if (ws.home / ".ssh").is_symlink():
            (ws.home / ".ssh").unlink()
        source_as_caller(ws)
    logs = sorted(p.name for p in ws.state.glob("pre-run.log*"))
    assert logs == ["pre-run.log", "pre-run.log.1", "pre-run.log.2"]
    assert all((ws.state / name).stat().st_size > 0 for name in logs)
    assert "done in" in (ws.state / "pre-run.log.2").read_text()


# The startup phase -------------------------------------------------------------------------
REPOSITORIES = [{"repo": "gitserver:notes.git"}]


def stub_tool(path: Path, record: Path, sleep: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/bash\n"
        # ansible-playbook refuses a non-blocking stdout; the stub checks it the same way.
        "python3 -c 'import os, sys; sys.exit(0 if os.get_blocking(1) and os.get_blocking(2) else 9)' || exit 9\n"
        f"{{ pwd; printf '%s\\n' \"$@\"; env | grep -c '^REFORGE_PRERUN_STAGE=' || true; }} > '{record}.tmp'\n"
        f"sleep {sleep}\n"
        f"mv '{record}.tmp' '{record}'\n"
    )
    path.chmod(0o755)


@pytest.mark.parametrize("runner", ["ansible-playbook", "ansible-runner"])
def test_the_startup_phase_runs_in_the_background(workspace: "Workspace", runner: str) -> None:
    ws = workspace
    project = ws.storage / "reforge"
    (project / "playbooks").mkdir(parents=True)
    (project / "playbooks" / "startup.yml").write_text("---\n")
    record = ws.root / "startup-ran"
    stub_tool(ws.storage / ".reforge" / "venv" / "bin" / runner, record, sleep=2)
    small_workspace(ws, prerun_startup_enabled=True, prerun_startup_runner=runner,
                    prerun_startup_repositories=REPOSITORIES, prerun_startup_extra_args=["--tags", "startup"])

    started = time.monotonic()
    source_as_caller(ws)
    assert time.monotonic() - started < 1.5, "the foreground waited for the startup phase"
    # The background run holds no lock the next start would wait for.
    started = time.monotonic()
    source_as_caller(ws)
    assert time.monotonic() - started < 1.5

    deadline = time.monotonic() + 15
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = record.read_text().splitlines()
    assert lines[0] == str(project)
    if runner == "ansible-playbook":
        # A first run (no stamp yet) skips only what pre-run.sh has just done; the user's arguments come last.
        assert lines[1:8] == ["-i", "inventory/paperspace.yml", "playbooks/startup.yml", "--skip-tags", "storage_links",
                              "--tags", "startup"]
    else:
        assert lines[1:4] == ["run", str(ws.state / "runner"), "--project-dir"]
        assert "--cmdline" in lines and "--tags startup --skip-tags storage_links" in lines
    assert lines[-1] == "0", "the startup phase inherited REFORGE_PRERUN_STAGE"
    assert "startup phase started in the background" in ws.log.read_text()
    assert "startup phase:" in (ws.state / "startup.log").read_text()


def test_the_startup_phase_is_off_by_default_and_skips_without_its_venv(workspace: "Workspace") -> None:
    ws = workspace
    small_workspace(ws)
    source_as_caller(ws)
    assert "startup phase" not in ws.log.read_text()
    small_workspace(ws, prerun_startup_enabled=True, prerun_startup_repositories=REPOSITORIES)
    source_as_caller(ws)
    assert "startup phase skipped" in ws.log.read_text()
    assert not (ws.state / "startup.log").exists()


# .bash.local ----------------------------------------------------------------------------------
def stub_commands(folder: Path, names: list[str], record: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        tool = folder / name
        tool.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{record}'\n")
        tool.chmod(0o755)


def test_bash_local_path_is_idempotent(workspace: "Workspace") -> None:
    ws = workspace
    bash_local = ws.render_bash_local()
    script = f"""
    set -u
    PATH=/usr/bin:/bin
    . '{bash_local}'
    first=$PATH
    . '{bash_local}'
    [ "$first" = "$PATH" ] || echo "PATH changed on the second source"
    echo "$PATH"
    """
    result = run_direct(["bash", "--norc", "-c", script], env={"HOME": str(ws.home)})
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().split("\n")[-1].split(":")
    assert path == [f"{ws.home}/.local/bin", "/usr/bin", "/bin", f"{ws.storage}/conda-env/bin"]


def test_pipi_installs_with_python_m_pip_user(workspace: "Workspace") -> None:
    ws = workspace
    record = ws.root / "calls"
    stub_commands(ws.root / "stubs", ["python3"], record)
    bash_local = ws.render_bash_local()
    result = run_direct(["bash", "--norc", "-c", f". '{bash_local}'; pipi fastbook 'x>=1'"],
                        env={"HOME": str(ws.home), "PATH": f"{ws.root / 'stubs'}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert record.read_text() == "python3 -m pip install --user fastbook x>=1\n"


def test_mambai_creates_the_environment_then_installs_into_it(workspace: "Workspace") -> None:
    ws = workspace
    record = ws.root / "calls"
    stub_commands(ws.root / "stubs", ["mamba"], record)
    bash_local = ws.render_bash_local()
    env = {"HOME": str(ws.home), "PATH": f"{ws.root / 'stubs'}:/usr/bin:/bin"}
    prefix = ws.storage / "conda-env"
    run_direct(["bash", "--norc", "-c", f". '{bash_local}'; mambai ripgrep"], env=env)
    (prefix / "conda-meta").mkdir(parents=True)
    run_direct(["bash", "--norc", "-c", f". '{bash_local}'; mambai jq"], env=env)
    assert record.read_text().splitlines() == [
        f"mamba create --yes --prefix {prefix} ripgrep",
        f"mamba install --yes --prefix {prefix} jq",
    ]


def test_mambai_falls_back_to_conda_and_says_when_neither_exists(workspace: "Workspace") -> None:
    ws = workspace
    record = ws.root / "calls"
    stub_commands(ws.root / "stubs", ["conda"], record)
    bash_local = ws.render_bash_local()
    run_direct(["bash", "--norc", "-c", f". '{bash_local}'; mambai jq"],
               env={"HOME": str(ws.home), "PATH": f"{ws.root / 'stubs'}:/usr/bin:/bin"})
    assert record.read_text().startswith("conda create --yes --prefix")
    missing = run_direct(["/bin/bash", "--norc", "-c", f". '{bash_local}'; mambai jq"],
                         env={"HOME": str(ws.home), "PATH": "/nonexistent"})
    assert missing.returncode == 127
    assert "neither mamba nor conda" in missing.stderr


def test_a_tilde_home_means_the_home_of_whoever_starts(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    ws.render(prerun_home_dir="~", storage_links_default_entries=link_entries_of([".local"], []))
    assert '__reforge_h=${REFORGE_HOME_DIR:-"${HOME:-}"}' in ws.script.read_text()
    source_as_caller(ws)  # runs with HOME set to the workspace's home
    assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")


def test_a_copy_left_by_an_interrupted_move_is_kept(workspace: "Workspace") -> None:
    ws = workspace
    fill_dir(ws.home / ".local", "home")
    staging = ws.storage / ".local.reforge-partial"
    fill_dir(staging, "interrupted")
    small_workspace(ws)
    before, _ = checksum([ws.home / ".local", staging])

    source_as_caller(ws)

    assert os.readlink(ws.home / ".local") == str(ws.storage / ".local")
    assert not staging.exists()
    kept = backups_of(ws, staging)
    assert len(kept) == 1
    assert checksum([ws.storage / ".local", kept[0]])[0] == before
    assert "left by an interrupted move" in ws.log.read_text()
