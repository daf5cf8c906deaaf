"""Unit tests of roles/storage_links/library/storage_link.py over real temporary trees.

Every combination of the home side, the storage side and the entry kind is built
on disk. A checksum over every file (its path inside the entry and its content)
found in home, storage, the wrong link's target and the backups must be the same
before and after: that is the proof that no byte was lost or duplicated.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from treedata import data_checksum, snapshot

from ansible.module_utils.testing import patch_module_args

MODULE_PATH = Path(__file__).resolve().parents[2] / "roles" / "storage_links" / "library" / "storage_link.py"


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reforge_storage_link", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


storage_link = _load_module()

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
    assert set(HOME_STATES) == set(storage_link.HOME_STATES)
    assert set(STORAGE_STATES) == set(storage_link.STORAGE_STATES)


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

    def run(self, kind: str, check_mode: bool = False, mode: int | None = None, name: str = NAME) -> dict[str, Any]:
        return storage_link.converge(
            str(self.home_entry(name)), str(self.storage_entry(name)), kind, str(self.backup), mode, check_mode
        )


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


# Measuring trees --------------------------------------------------------------
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
        assert result["moved"] == {"src": str(home), "dest": str(store)}
        assert result["backup"] is None and backups == []
        if home_before is not None:
            assert snapshot(store) == home_before
    elif home_kind is not None:
        # Storage held content (storage wins) or home had the wrong kind: home's copy is in the backup.
        assert result["moved"] is None
        assert backups == [Path(result["backup"])]
        assert str(backups[0]).startswith(str(layout.backup) + "/")
        if home_before is not None:
            assert snapshot(backups[0]) == home_before
        if store_before is not None:
            assert snapshot(store) == store_before
        if store_bytes is not None:
            assert store.read_bytes() == store_bytes
    else:
        assert result["moved"] is None and result["backup"] is None and backups == []

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
    before_sum, _ = data_checksum(data_roots(layout))

    result = layout.run(kind)

    assert result["removed_empty"] == [str(home)]
    assert result["backup"] is None and layout.backups() == []
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
    result = layout.run("dir", mode=0o700)
    assert result["created"] is True and result["mode_changed"] is True
    assert stat.S_IMODE(layout.storage_entry().stat().st_mode) == 0o700


def test_relative_link_that_resolves_to_storage_is_left_alone(layout: Layout) -> None:
    layout.build("dir", "absent", "content")
    layout.home_entry().symlink_to(Path("..") / "storage" / NAME)

    result = layout.run("dir")

    assert result["changed"] is False
    assert os.readlink(layout.home_entry()) == "../storage/.entry"


def test_two_backups_in_the_same_second_do_not_collide(layout: Layout) -> None:
    layout.build("dir", "real_dir", "content")
    first = storage_link.backup_destination(str(layout.home_entry()), str(layout.backup), now=0)
    Path(first).mkdir(parents=True)
    second = storage_link.backup_destination(str(layout.home_entry()), str(layout.backup), now=0)
    assert second == first + ".1"


@pytest.mark.parametrize("kind", KINDS)
def test_storage_of_the_wrong_kind_is_refused_untouched(layout: Layout, kind: str) -> None:
    layout.build(kind, "real_dir" if kind == "dir" else "real_file", "absent")
    _make_side(layout.storage_entry(), "file" if kind == "dir" else "dir", "storage")
    before = snapshot(layout.root)

    with pytest.raises(storage_link.StorageLinkError, match="declared as kind="):
        layout.run(kind)
    assert snapshot(layout.root) == before


def test_broken_link_on_the_storage_side_is_refused(layout: Layout) -> None:
    layout.build("dir", "real_dir", "absent")
    layout.storage_entry().symlink_to(layout.root / "gone")
    before = snapshot(layout.root)
    with pytest.raises(storage_link.StorageLinkError, match="broken link on the storage side"):
        layout.run("dir")
    assert snapshot(layout.root) == before


def test_storage_inside_the_home_entry_is_refused(layout: Layout) -> None:
    _fill_dir(layout.home_entry(), "home")
    inner = layout.home_entry() / "persist"
    with pytest.raises(storage_link.StorageLinkError, match="overlap"):
        storage_link.converge(str(layout.home_entry()), str(inner), "dir", str(layout.backup), None, False)


def test_missing_volume_is_refused(layout: Layout) -> None:
    with pytest.raises(storage_link.StorageLinkError, match="is the persistent volume mounted"):
        storage_link.converge(
            str(layout.home_entry()), str(layout.root / "unmounted" / NAME), "dir", str(layout.backup), None, False
        )


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
        before_sum, _ = data_checksum(data_roots(layout))

        result = layout.run("dir")

        assert data_checksum(data_roots(layout))[0] == before_sum
        assert not layout.home_entry().exists() or layout.home_entry().is_symlink()
        assert (result["moved"] is not None) == (storage_state == "absent")
        assert (result["backup"] is not None) == (storage_state == "content")
        # Private modes survive the copy between file systems.
        kept = layout.storage_entry() if storage_state == "absent" else Path(result["backup"])
        assert stat.S_IMODE((kept / "id_ed25519").stat().st_mode) == 0o600


# Through AnsibleModule ----------------------------------------------------------
def _run_main(args: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        storage_link.main()
    return json.loads(capsys.readouterr().out)


def test_main_reports_the_diff_and_the_move(layout: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    layout.build("dir", "real_dir", "absent")
    args = {
        "path": str(layout.home_entry()),
        "storage": str(layout.storage_entry()),
        "kind": "dir",
        "backup_dir": str(layout.backup),
        "mode": "0700",
        "_ansible_diff": True,
        "_ansible_check_mode": True,
    }
    planned = _run_main(args, capsys)
    assert planned["changed"] is True
    assert "directory" in planned["diff"]["before"] and f"-> {layout.storage_entry()}" in planned["diff"]["after"]
    assert layout.home_entry().is_dir() and not layout.home_entry().is_symlink()

    done = _run_main({**args, "_ansible_check_mode": False}, capsys)
    assert done["moved"] == {"src": str(layout.home_entry()), "dest": str(layout.storage_entry())}
    assert done["mode_changed"] is True
    assert layout.home_entry().is_symlink()

    again = _run_main(args, capsys)
    assert again["changed"] is False
    assert again["diff"]["before"] == again["diff"]["after"]


@pytest.mark.parametrize("mode", ["rwx", "99", "077777"])
def test_main_refuses_a_bad_mode(layout: Layout, capsys: pytest.CaptureFixture[str], mode: str) -> None:
    args = {"path": str(layout.home_entry()), "storage": str(layout.storage_entry()),
            "backup_dir": str(layout.backup), "mode": mode}
    result = _run_main(args, capsys)
    assert result["failed"] is True and "octal mode" in result["msg"]
    assert not layout.home_entry().exists() and not layout.storage_entry().exists()


def test_main_fails_with_a_sentence_on_a_refused_layout(layout: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    layout.build("file", "real_file", "absent")
    layout.storage_entry().mkdir()
    args = {"path": str(layout.home_entry()), "storage": str(layout.storage_entry()), "kind": "file",
            "backup_dir": str(layout.backup)}
    result = _run_main(args, capsys)
    assert result["failed"] is True
    assert "is not a regular file but the entry is declared as kind=file" in result["msg"]
    assert layout.home_entry().is_file()


def test_a_copy_left_by_an_interrupted_move_is_kept(layout: Layout) -> None:
    layout.build("dir", "real_dir", "absent")
    staging = Path(storage_link.staging_path(str(layout.storage_entry())))
    assert staging.parent == layout.storage and staging.name == ".entry.reforge-partial"
    _fill_dir(staging, "interrupted")
    before_sum, _ = data_checksum(data_roots(layout) + [staging])

    result = layout.run("dir")

    assert result["moved"] == {"src": str(layout.home_entry()), "dest": str(layout.storage_entry())}
    assert result["backup"] is None
    assert not staging.exists()
    kept = sorted(layout.backup.glob("*/" + str(staging).lstrip("/")))
    assert len(kept) == 1
    assert data_checksum(data_roots(layout) + kept)[0] == before_sum
    assert layout.run("dir")["changed"] is False
