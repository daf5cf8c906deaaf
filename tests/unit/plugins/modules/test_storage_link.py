"""Unit tests of the link engine (plugins/module_utils/storage_engine.py) and of the storage_link module
that wraps it, over real temporary trees.

Every combination of the home side, the storage side and the entry kind is built
on disk. A checksum over every file (its path inside the entry and its content)
found in home, storage, the wrong link's target and the backups must be the same
before and after: that is the proof that no byte was lost or duplicated.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.reforge.workstation.plugins.module_utils import storage_engine as engine
from ansible_collections.reforge.workstation.plugins.modules import storage_link
from ansible_collections.reforge.workstation.tests.unit.treedata import data_checksum, snapshot

KINDS = ("dir", "file")
HOME_STATES = ("absent", "real_dir", "real_file", "correct_link", "wrong_link", "broken_link")
STORAGE_STATES = ("absent", "empty", "content")
CASES = [(kind, home, store) for kind in KINDS for home in HOME_STATES for store in STORAGE_STATES]
CASE_IDS = [
    f"case{index:02d}of{len(CASES)}-kind={kind}-home={home}-storage={store}"
    for index, (kind, home, store) in enumerate(CASES, start=1)
]
NAME = ".entry"


def test_the_matrix_covers_every_combination() -> None:
    assert len(CASES) == len(KINDS) * len(HOME_STATES) * len(STORAGE_STATES) == 36
    assert len(set(CASE_IDS)) == 36
    assert set(HOME_STATES) == set(engine.HOME_STATES)
    assert set(STORAGE_STATES) == set(engine.STORAGE_STATES)


# Building trees ---------------------------------------------------------------
def _fill_dir(path: Path, tag: str) -> None:
    """A directory with nested files, a private file, random bytes and an inner symlink."""
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text(f"notes from {tag}\n")
    (path / "sub" / "blob.bin").write_bytes(os.urandom(4096) + tag.encode())
    key = path / "id_ed25519"
    key.write_text(f"not a real key, {tag}\n")
    key.chmod(0o600)
    (path / "sub" / "notes-link").symlink_to("../notes.txt")


def _make_side(path: Path, kind: str, tag: str) -> None:
    if kind == "dir":
        _fill_dir(path, tag)
    else:
        path.write_bytes(f"file content from {tag}\n".encode() + os.urandom(64))


class Layout:
    """home/, storage/, elsewhere/ (wrong link targets) and the backup folder, in one temp root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.storage = root / "storage"
        self.elsewhere = root / "elsewhere"
        self.backup = self.storage / ".reforge" / "backup"
        for folder in (self.home, self.storage, self.elsewhere):
            folder.mkdir(parents=True, exist_ok=True)

    def home_entry(self, name: str = NAME) -> Path:
        return self.home / name

    def storage_entry(self, name: str = NAME) -> Path:
        return self.storage / name

    def build(self, kind: str, home_state: str, storage_state: str, name: str = NAME) -> None:
        home, store = self.home_entry(name), self.storage_entry(name)
        if storage_state == "empty":
            if kind == "dir":
                store.mkdir()
            else:
                store.touch()
        elif storage_state == "content":
            _make_side(store, kind, "storage")
        if home_state == "real_dir":
            _fill_dir(home, "home")
        elif home_state == "real_file":
            home.write_bytes(b"home file " + os.urandom(64))
        elif home_state == "correct_link":
            home.symlink_to(store)
        elif home_state == "wrong_link":
            _make_side(self.elsewhere / name, kind, "elsewhere")
            home.symlink_to(self.elsewhere / name)
        elif home_state == "broken_link":
            home.symlink_to(self.root / "nowhere" / name)

    def backups(self, name: str = NAME) -> list[Path]:
        if not self.backup.is_dir():
            return []
        relative = str(self.home_entry(name)).lstrip("/")
        return sorted(p for stamp in self.backup.iterdir() for p in stamp.glob(relative + "*"))

    def settings(self) -> Any:
        return engine.Settings(storage_dir=str(self.storage), backup_dir=str(self.backup),
                               state_dir=str(self.backup.parent))

    def run(self, kind: str, check_mode: bool = False, mode: int | None = None, name: str = NAME) -> dict[str, Any]:
        """One entry through the module's converge; the entry's outcome as a dict."""
        entry = engine.Entry(str(self.home_entry(name)), str(self.storage_entry(name)), kind, mode)
        report = storage_link.converge([entry], self.settings(), check_mode)
        if report["errors"]:
            raise engine.Refused("; ".join(report["errors"]))
        out = report["outcomes"][0]
        return {**storage_link.outcome_dict(out), "_diff": {"before": out.before, "after": out.after}}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


# Measuring trees --------------------------------------------------------------
def files_of(tree: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """A snapshot without its folders' modes (backup folders are created 0700)."""
    return {key: value if value[0] != "dir" else ("dir",) for key, value in tree.items()}


def data_roots(layout: Layout, name: str = NAME) -> list[Path]:
    return [layout.home_entry(name), layout.storage_entry(name), layout.elsewhere / name] + layout.backups(name)


# The matrix -------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "home_state", "storage_state"), CASES, ids=CASE_IDS)
def test_converges_to_the_link_without_losing_a_byte(
    layout: Layout, kind: str, home_state: str, storage_state: str
) -> None:
    layout.build(kind, home_state, storage_state)
    home, store = layout.home_entry(), layout.storage_entry()
    before_sum, before_items = data_checksum(data_roots(layout))
    home_before = snapshot(home) if home_state == "real_dir" else None
    store_before = snapshot(store) if storage_state == "content" and kind == "dir" else None
    store_bytes = store.read_bytes() if storage_state == "content" and kind == "file" else None

    result = layout.run(kind)

    after_sum, after_items = data_checksum(data_roots(layout))
    assert after_items == before_items
    assert after_sum == before_sum
    # The home side ends as the link, and the storage side as an entry of the declared kind.
    assert home.is_symlink() and os.readlink(home) == str(store)
    assert store.is_dir() if kind == "dir" else store.is_file()
    assert not store.is_symlink()
    assert result["home_state"] == home_state
    assert result["storage_state"] == storage_state
    assert result["changed"] is not (home_state == "correct_link" and storage_state != "absent")

    home_kind = {"real_dir": "dir", "real_file": "file"}.get(home_state)
    backups = layout.backups()
    if home_kind == kind and storage_state != "content":
        # Storage was absent or empty: home's content moved in, nothing backed up.
        assert result["moved"] == [str(store)]
        assert result["backups"] == [] and backups == []
        if home_before is not None:
            assert snapshot(store) == home_before
    elif home_kind is not None:
        # Storage held content (storage wins) or home had the wrong kind: home's copy is in the backup.
        # Every home item collides with one in storage, so all of them (and only they) are in the backup.
        assert result["moved"] == []
        assert len(backups) == 1 and all(b.startswith(str(backups[0])) for b in result["backups"])
        assert str(backups[0]).startswith(str(layout.backup) + "/")
        if home_before is not None:
            assert files_of(snapshot(backups[0])) == files_of(home_before)
        if store_before is not None:
            assert snapshot(store) == store_before
        if store_bytes is not None:
            assert store.read_bytes() == store_bytes
    else:
        assert result["moved"] == [] and result["backups"] == [] and backups == []

    if home_state == "wrong_link":
        assert result["replaced_link"] == str(layout.elsewhere / NAME)
    elif home_state == "broken_link":
        assert result["replaced_link"] == str(layout.root / "nowhere" / NAME)
    else:
        assert result["replaced_link"] is None
    if backups:
        assert stat.S_IMODE(layout.backup.stat().st_mode) == 0o700

    # A second run finds nothing to do.
    again = layout.run(kind)
    assert again["changed"] is False and again["actions"] == []
    assert again["home_state"] == "correct_link"


@pytest.mark.parametrize(("kind", "home_state", "storage_state"), CASES, ids=CASE_IDS)
def test_check_mode_changes_nothing_and_predicts_the_change(
    layout: Layout, kind: str, home_state: str, storage_state: str
) -> None:
    layout.build(kind, home_state, storage_state)
    before = snapshot(layout.root)

    planned = layout.run(kind, check_mode=True, mode=0o700 if kind == "dir" else 0o600)

    assert snapshot(layout.root) == before
    applied = layout.run(kind, mode=0o700 if kind == "dir" else 0o600)
    assert planned["changed"] == applied["changed"]
    assert [a.split(" to ")[0] for a in planned["actions"]] == [a.split(" to ")[0] for a in applied["actions"]]
    assert planned["_diff"]["before"] != planned["_diff"]["after"] or not planned["changed"]


# Beyond the matrix ------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_empty_home_copy_is_dropped_when_storage_holds_content(layout: Layout, kind: str) -> None:
    layout.build(kind, "absent", "content")
    home = layout.home_entry()
    if kind == "dir":
        home.mkdir()
    else:
        home.touch()
    before_sum = data_checksum(data_roots(layout))[0]

    result = layout.run(kind)

    assert result["actions"][0] == f"remove empty {home}"
    assert result["backups"] == [] and layout.backups() == []
    assert home.is_symlink()
    assert data_checksum(data_roots(layout))[0] == before_sum


@pytest.mark.parametrize(("kind", "mode"), [("dir", 0o700), ("file", 0o600)],
                         ids=["ssh-dir-0700", "credentials-file-0600"])
def test_mode_is_enforced_on_the_storage_side(layout: Layout, kind: str, mode: int) -> None:
    layout.build(kind, "real_dir" if kind == "dir" else "real_file", "absent")
    layout.home_entry().chmod(0o755)

    result = layout.run(kind, mode=mode)

    assert result["mode_changed"] is True
    assert stat.S_IMODE(layout.storage_entry().stat().st_mode) == mode
    assert layout.run(kind, mode=mode)["changed"] is False
    # Through the link, as ssh sees it.
    assert stat.S_IMODE(os.stat(layout.home_entry()).st_mode) == mode


def test_mode_on_a_freshly_created_entry(layout: Layout) -> None:
    result = layout.run("dir", mode=0o755)
    assert result["created"] is True and result["mode_changed"] is True
    assert stat.S_IMODE(layout.storage_entry().stat().st_mode) == 0o755


def test_a_fresh_entry_is_created_private_so_its_mode_needs_no_change(layout: Layout) -> None:
    result = layout.run("dir", mode=0o700)
    assert result["created"] is True and result["mode_changed"] is False
    assert stat.S_IMODE(layout.storage_entry().stat().st_mode) == 0o700


def test_relative_link_that_resolves_to_storage_is_left_alone(layout: Layout) -> None:
    layout.build("dir", "absent", "content")
    layout.home_entry().symlink_to(Path("..") / "storage" / NAME)

    result = layout.run("dir")

    assert result["changed"] is False
    assert os.readlink(layout.home_entry()) == "../storage/.entry"


def test_one_run_uses_one_backup_stamp_and_two_in_a_second_do_not_collide(layout: Layout) -> None:
    for name in (".a", ".b"):
        layout.build("file", "real_file", "content", name=name)
    runner = engine.Engine(layout.settings(), now=0)
    entries = [engine.Entry(str(layout.home_entry(n)), str(layout.storage_entry(n)), "file") for n in (".a", ".b")]
    report = runner.run(entries)
    assert [p.name for p in layout.backup.iterdir()] == ["19700101T000000Z"]
    assert len(report["backups"]) == 2
    layout.home_entry(".a").unlink()  # now the link; a new home copy appears
    layout.home_entry(".a").write_text("again")
    again = engine.Engine(layout.settings(), now=0).run(entries[:1])
    assert again["backups"] == [report["backups"][0] + ".1"]


@pytest.mark.parametrize("kind", KINDS)
def test_storage_of_the_wrong_kind_is_refused_untouched(layout: Layout, kind: str) -> None:
    layout.build(kind, "real_dir" if kind == "dir" else "real_file", "absent")
    _make_side(layout.storage_entry(), "file" if kind == "dir" else "dir", "storage")
    before = snapshot(layout.root)

    with pytest.raises(engine.Refused, match="declared as kind="):
        layout.run(kind)
    assert snapshot(layout.root) == before


def test_broken_link_on_the_storage_side_is_refused(layout: Layout) -> None:
    layout.build("dir", "real_dir", "absent")
    layout.storage_entry().symlink_to(layout.root / "gone")
    before = snapshot(layout.root)
    with pytest.raises(engine.Refused, match="on the storage side is a symbolic link"):
        layout.run("dir")
    assert snapshot(layout.root) == before


def test_storage_inside_the_home_entry_is_refused(layout: Layout) -> None:
    _fill_dir(layout.home_entry(), "home")
    inner = layout.home_entry() / "persist"
    entry = engine.Entry(str(layout.home_entry()), str(inner), "dir")
    settings = layout.settings()
    settings.storage_dir = str(layout.home_entry())
    report = storage_link.converge([entry], settings, False)
    assert "overlap" in report["errors"][0]


def test_missing_volume_is_refused(layout: Layout) -> None:
    settings = layout.settings()
    settings.storage_dir = str(layout.root / "unmounted")
    entry = engine.Entry(str(layout.home_entry()), str(layout.root / "unmounted" / NAME), "dir")
    report = storage_link.converge([entry], settings, False)
    assert "is the persistent volume mounted" in report["errors"][0]


def _other_file_system() -> Path | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != Path(tempfile.gettempdir()).stat().st_dev:
        return shm
    return None


@pytest.mark.skipif(_other_file_system() is None, reason="needs /dev/shm on a file system other than the temp dir")
@pytest.mark.parametrize("storage_state", ["absent", "content"])
def test_moves_work_across_file_systems(tmp_path: Path, storage_state: str) -> None:
    other = _other_file_system()
    assert other is not None
    with tempfile.TemporaryDirectory(dir=other) as volume:
        layout = Layout(tmp_path)
        layout.storage = Path(volume) / "storage"
        layout.backup = layout.storage / ".reforge" / "backup"
        layout.storage.mkdir()
        assert layout.storage.stat().st_dev != layout.home.stat().st_dev
        layout.build("dir", "real_dir", storage_state)
        before_sum = data_checksum(data_roots(layout))[0]

        result = layout.run("dir")

        assert data_checksum(data_roots(layout))[0] == before_sum
        assert not layout.home_entry().exists() or layout.home_entry().is_symlink()
        assert bool(result["moved"]) == (storage_state == "absent")
        assert bool(result["backups"]) == (storage_state == "content")
        assert not list(layout.storage.rglob("*reforge-partial*"))
        # Private modes survive the copy between file systems.
        kept = layout.storage_entry() if storage_state == "absent" else layout.backups()[0]
        assert stat.S_IMODE((kept / "id_ed25519").stat().st_mode) == 0o600


# Through AnsibleModule ----------------------------------------------------------
def _run_main(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        storage_link.main()
    return json.loads(capsys.readouterr().out)


def _args(layout: Layout, *entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"storage_dir": str(layout.storage), "backup_dir": str(layout.backup), "entries": list(entries), **extra}


def test_main_takes_the_whole_list_and_reports_the_diff(layout: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    layout.build("dir", "real_dir", "absent", name=".d")
    layout.build("file", "real_file", "content", name=".f")
    args = _args(layout,
                 {"path": str(layout.home_entry(".d")), "storage": str(layout.storage_entry(".d")), "mode": "0700"},
                 {"path": str(layout.home_entry(".f")), "storage": str(layout.storage_entry(".f")), "kind": "file"},
                 _ansible_diff=True, _ansible_check_mode=True)
    before = snapshot(layout.root)
    planned = _run_main(args, capsys)
    assert planned["changed"] is True and snapshot(layout.root) == before
    assert len(planned["diff"]) == 2 and "directory" in planned["diff"][0]["before"]

    done = _run_main({**args, "_ansible_check_mode": False}, capsys)
    assert done["entries"][0]["moved"] == [str(layout.storage_entry(".d"))]
    assert done["entries"][0]["mode_changed"] is True
    assert done["backups"] == done["entries"][1]["backups"] and len(done["backups"]) == 1
    assert [a.split(" to ")[0] for a in planned["actions"]] == [a.split(" to ")[0] for a in done["actions"]]

    again = _run_main(args, capsys)
    assert again["changed"] is False and again["diff"] == []


@pytest.mark.parametrize("mode", ["rwx", "99", "077777"])
def test_main_refuses_a_bad_mode(layout: Layout, capsys: pytest.CaptureFixture[str], mode: str) -> None:
    args = _args(layout, {"path": str(layout.home_entry()), "storage": str(layout.storage_entry()), "mode": mode})
    result = _run_main(args, capsys)
    assert result["failed"] is True and "octal mode" in result["msg"]
    assert not layout.home_entry().exists() and not layout.storage_entry().exists()


def test_main_refuses_before_changing_anything(layout: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    layout.build("dir", "real_dir", "absent", name=".good")
    layout.build("file", "real_file", "absent")
    layout.storage_entry().mkdir()
    before = snapshot(layout.root)
    args = _args(layout,
                 {"path": str(layout.home_entry(".good")), "storage": str(layout.storage_entry(".good"))},
                 {"path": str(layout.home_entry()), "storage": str(layout.storage_entry()), "kind": "file"})
    result = _run_main(args, capsys)
    assert result["failed"] is True
    assert "is not a regular file but the entry is declared as kind=file" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert snapshot(layout.root) == before


def test_a_copy_left_by_an_interrupted_move_is_kept(layout: Layout) -> None:
    layout.build("dir", "real_dir", "absent")
    staging = Path(str(layout.storage_entry()) + engine.PARTIAL)
    assert staging.parent == layout.storage and staging.name == ".entry.reforge-partial"
    _fill_dir(staging, "interrupted")
    before_sum = data_checksum(data_roots(layout) + [staging])[0]

    result = layout.run("dir")

    assert result["moved"] == [str(layout.storage_entry())]
    assert not staging.exists()
    kept = sorted(layout.backup.glob("*/" + str(staging).lstrip("/")))
    assert len(kept) == 1 and result["backups"] == [str(kept[0])]
    assert data_checksum(data_roots(layout) + kept)[0] == before_sum
    assert layout.run("dir")["changed"] is False


def test_an_interrupted_partial_copy_of_home_is_dropped_not_backed_up(layout: Layout) -> None:
    layout.build("dir", "real_dir", "absent")
    staging = Path(str(layout.storage_entry()) + engine.PARTIAL)
    staging.mkdir()
    (staging / "notes.txt").write_text("notes fr")  # a prefix of home's notes.txt: a truncated copy

    result = layout.run("dir")

    assert not staging.exists() and result["backups"] == [] and not layout.backup.exists()
    assert (layout.storage_entry() / "notes.txt").read_text() == "notes from home\n"


# Merge, don't replace (issue 9, item 3) ---------------------------------------------
def test_home_items_that_storage_lacks_are_merged_in_and_only_collisions_are_backed_up(layout: Layout) -> None:
    site = "lib/python3/site-packages"
    home, store = layout.home_entry(".local"), layout.storage_entry(".local")
    (home / site / "six-1.16.dist-info").mkdir(parents=True)
    (home / site / "six.py").write_text("# six\n")
    (home / site / "six-1.16.dist-info" / "RECORD").write_text("six.py\n")
    (home / "bin").mkdir()
    (home / "bin" / "tool").write_text("home tool\n")
    (store / site / "requests").mkdir(parents=True)
    (store / site / "requests" / "__init__.py").write_text("# requests\n")
    (store / "bin").mkdir()
    (store / "bin" / "tool").write_text("storage tool\n")
    before_sum = data_checksum(data_roots(layout, ".local"))[0]

    result = layout.run("dir", name=".local")

    assert (store / site / "six.py").read_text() == "# six\n"
    assert (store / site / "six-1.16.dist-info" / "RECORD").is_file()
    assert (store / site / "requests" / "__init__.py").is_file()
    assert (store / "bin" / "tool").read_text() == "storage tool\n"
    backup_tool = Path(result["backups"][0])
    assert result["backups"] == [str(backup_tool)] and backup_tool.read_text() == "home tool\n"
    assert backup_tool.name == "tool" and str(home / "bin" / "tool").lstrip("/") in str(backup_tool)
    assert os.readlink(home) == str(store)
    assert data_checksum(data_roots(layout, ".local"))[0] == before_sum


def test_check_mode_counts_what_a_merge_moves_and_backs_up(layout: Layout) -> None:
    home, store = layout.home_entry(), layout.storage_entry()
    (home / "a").mkdir(parents=True)
    (home / "a" / "new").write_text("n")
    (home / "same").write_text("h")
    store.mkdir()
    (store / "same").write_text("s")
    planned = layout.run("dir", check_mode=True)
    assert planned["actions"][0] == f"merge {home} into {store}: 1 item(s) move, 1 colliding item(s) to the backup"


# No clobber (item 4, R4) -------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_something_that_appears_during_the_move_is_never_replaced(
    layout: Layout, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout.build(kind, "real_dir" if kind == "dir" else "real_file", "absent")
    store = layout.storage_entry()
    home_sum = data_checksum([layout.home_entry()])[0]
    real_place = engine.place

    def teammate_then_place(src: str, dest: str) -> None:
        if dest == str(store):
            if kind == "dir":
                store.mkdir()
                (store / "theirs").write_text("TEAMMATE\n")
            else:
                store.write_text("TEAMMATE\n")
        real_place(src, dest)

    monkeypatch.setattr(engine, "place", teammate_then_place)
    with pytest.raises(engine.Refused, match="appeared"):
        layout.run(kind)
    theirs = store / "theirs" if kind == "dir" else store
    assert theirs.read_text() == "TEAMMATE\n"
    assert data_checksum([layout.home_entry()])[0] == home_sum, "home must stay as it was"


def test_a_cross_file_system_copy_that_meets_a_new_file_keeps_both(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout.build("file", "real_file", "absent")
    home_bytes = layout.home_entry().read_bytes()
    store = layout.storage_entry()
    real_copy = engine.shutil.copy2

    def copy_then_teammate(src: str, dest: str, **kwargs: Any) -> Any:
        done = real_copy(src, dest, **kwargs)
        store.write_text("TEAMMATE\n")
        return done

    monkeypatch.setattr(engine.shutil, "copy2", copy_then_teammate)
    real_lstat = os.lstat

    def other_device(path: Any) -> os.stat_result:  # make the move look like one between file systems
        info = real_lstat(path)
        if str(path) == str(layout.home_entry()):
            fields = list(info)
            fields[2] = info.st_dev + 1
            return os.stat_result(fields)
        return info

    monkeypatch.setattr(engine.os, "lstat", other_device)
    result = layout.run("file")
    monkeypatch.undo()

    assert store.read_text() == "TEAMMATE\n"
    assert len(result["backups"]) == 1 and Path(result["backups"][0]).read_bytes() == home_bytes
    assert not Path(str(store) + engine.PARTIAL).exists()


# Never through a link (item 2, R1, R3) ---------------------------------------------------
def test_a_storage_link_to_etc_is_refused_and_not_chmodded(layout: Layout) -> None:
    etc = layout.root / "etc"
    etc.mkdir(mode=0o755)
    etc.chmod(0o755)
    (etc / "passwd").write_text("x")
    (etc / "passwd").chmod(0o644)
    layout.storage_entry().symlink_to(etc)
    with pytest.raises(engine.Refused, match="symbolic link"):
        layout.run("dir", mode=0o700)
    assert stat.S_IMODE(etc.stat().st_mode) == 0o755 and stat.S_IMODE((etc / "passwd").stat().st_mode) == 0o644


def test_chmod_never_follows_a_link(layout: Layout) -> None:
    target = layout.root / "target"
    target.write_text("x")
    target.chmod(0o644)
    link = layout.root / "link"
    link.symlink_to(target)
    with pytest.raises(OSError):
        engine.chmod_nofollow(str(link), 0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_backup_folder_that_is_a_link_receives_nothing(layout: Layout) -> None:
    public = layout.root / "public"
    public.mkdir()
    layout.backup.parent.mkdir(parents=True)
    layout.backup.symlink_to(public)
    layout.build("file", "real_file", "content")
    home_bytes = layout.home_entry().read_bytes()
    with pytest.raises(engine.Refused, match="symbolic link"):
        layout.run("file")
    assert list(public.iterdir()) == []
    assert layout.home_entry().read_bytes() == home_bytes


# Retention and the lock (items 5, 6) -----------------------------------------------------
def test_backups_are_pruned_by_count_and_age_then_by_size(layout: Layout) -> None:
    layout.backup.mkdir(parents=True)
    for stamp in ("20200101T000000Z", "20200201T000000Z", "20200301T000000Z"):
        (layout.backup / stamp).mkdir()
        (layout.backup / stamp / "data").write_bytes(b"x" * 10000)
    settings = layout.settings()
    settings.backup_keep = 2
    pruned = engine.Engine(settings).prune_backups()
    assert pruned == [str(layout.backup / "20200101T000000Z")]
    settings.backup_max_bytes = 20000
    assert engine.Engine(settings).prune_backups() == [str(layout.backup / "20200201T000000Z")]
    assert [p.name for p in layout.backup.iterdir()] == ["20200301T000000Z"]


def test_a_mkdir_lock_of_another_host_is_respected_until_its_lease_expires(layout: Layout) -> None:
    settings = layout.settings()
    settings.use_flock = False
    settings.lock_timeout = 0.3
    lock_dir = layout.backup.parent / "pre-run.lock.d"
    lock_dir.mkdir(parents=True)
    (lock_dir / "owner").write_text(f"1 other-host {int(time.time()) + 60}\n")
    with pytest.raises(engine.LockBusy, match="until its lease expires"):
        engine.Lock(settings, os.geteuid(), lambda _m: None).acquire()
    (lock_dir / "owner").write_text(f"1 other-host {int(time.time()) - 1}\n")
    notes: list[str] = []
    lock = engine.Lock(settings, os.geteuid(), notes.append)
    lock.acquire()
    assert notes == ["took over the lock of pid 1 on other-host: its lease expired"]
    lock.release()
    assert not lock_dir.exists()
