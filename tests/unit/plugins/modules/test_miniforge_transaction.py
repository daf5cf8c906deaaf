"""miniforge_transaction: the rename-aside transaction, its journal and generations,
on real directories in a scratch dir (the module never runs conda)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.reforge.workstation.plugins.modules import miniforge_transaction as mt


def make_prefix(path: Path, marker: str) -> Path:
    (path / "conda-meta").mkdir(parents=True)
    (path / "bin").mkdir()
    (path / "bin" / "conda").write_text("#!/bin/sh\n")
    (path / "conda-meta" / "conda-24.11.3-py311_0.json").write_text("{}")
    (path / "conda-meta" / "numpy-2.0.0-py311_0.json").write_text("{}")
    (path / "marker").write_text(marker)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    make_prefix(home / "miniforge3", "old")
    (home / ".bashrc").write_bytes(b"# mine\n# >>> conda initialize >>>\nold block\n# <<< conda initialize <<<\n")
    (home / ".condarc").write_bytes(b"channels: [conda-forge]\n")
    return home


def params(home: Path, step: str, **more: object) -> dict[str, object]:
    base = {
        "step": step,
        "prefix": str(home / "miniforge3"),
        "generations_dir": str(home / "miniforge3.generations"),
        "journal_dir": str(home / ".local/state/reforge/transactions"),
        "backup_files": [str(home / ".bashrc"), str(home / ".zshrc"), str(home / ".condarc")],
        "keep": 1,
        "generation": 1,
    }
    base.update(more)
    return base


def generations(home: Path) -> list[str]:
    return mt.generation_ids(str(home / "miniforge3.generations"))


def half_install(home: Path) -> None:
    """What an installer and conda leave when they fail half way: a partial new prefix, changed rc files."""
    (home / "miniforge3" / "bin").mkdir(parents=True)
    (home / "miniforge3" / "bin" / "python").write_text("partial")
    with open(home / ".bashrc", "ab") as rc:
        rc.write(b"# >>> conda initialize >>>\nnew block\n# <<< conda initialize <<<\n")
    (home / ".zshrc").write_text("created by the rebuild\n")
    (home / ".condarc").write_text("changed\n")


def test_begin_renames_the_prefix_aside_beside_it_and_writes_a_journal(home: Path) -> None:
    result = mt.run(params(home, "begin"), False)
    assert not (home / "miniforge3").exists()
    aside = Path(result["aside"])
    assert aside.parent == home / "miniforge3.generations"
    assert (aside / "marker").read_text() == "old"
    journal = json.loads(Path(result["journal"]).read_text())
    assert journal["phase"] == "swapped" and journal["aside"] == str(aside)
    assert journal["backups"][str(home / ".zshrc")] is None


def test_rollback_removes_the_new_prefix_and_restores_everything_byte_for_byte(home: Path) -> None:
    before = {name: (home / name).read_bytes() for name in (".bashrc", ".condarc")}
    os.chmod(home / ".bashrc", 0o600)
    mt.run(params(home, "begin"), False)
    half_install(home)
    result = mt.run(params(home, "rollback", reason="packages | Install the base conda packages"), False)
    assert (home / "miniforge3" / "marker").read_text() == "old"
    assert not (home / "miniforge3" / "bin" / "python").exists()
    for name, content in before.items():
        assert (home / name).read_bytes() == content
    assert (home / ".bashrc").stat().st_mode & 0o777 == 0o600
    assert not (home / ".zshrc").exists()
    assert generations(home) == []
    assert not Path(result["journal"]).exists()
    assert "rolled back after: packages | Install the base conda packages" in result["report"][0]


def test_a_killed_rebuild_is_undone_by_the_next_run(home: Path) -> None:
    mt.run(params(home, "begin"), False)
    half_install(home)
    # kill -9: nothing ran after the half install; the next run recovers first.
    result = mt.run(params(home, "recover"), False)
    assert result["pending"] and result["changed"]
    assert (home / "miniforge3" / "marker").read_text() == "old"
    assert not (home / ".zshrc").exists()
    again = mt.run(params(home, "recover"), False)
    assert not again["pending"] and not again["changed"]


def test_a_kill_before_the_rename_leaves_the_old_prefix_alone(home: Path) -> None:
    paths = mt.Paths(str(home / "miniforge3"), str(home / "miniforge3.generations"),
                     str(home / ".local/state/reforge/transactions"))
    mt.write_json(paths.journal, {"op": "rebuild", "prefix": paths.prefix, "phase": "begun",
                                  "aside": str(home / "miniforge3.generations" / mt.now_id()), "backups": {}})
    mt.run(params(home, "recover"), False)
    assert (home / "miniforge3" / "marker").read_text() == "old"


def test_a_fresh_install_that_fails_leaves_no_prefix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    mt.run(params(home, "begin"), False)
    half_install(home)
    mt.run(params(home, "rollback"), False)
    assert not (home / "miniforge3").exists()
    assert not (home / ".bashrc").exists() or b"new block" not in (home / ".bashrc").read_bytes()


def test_commit_keeps_the_old_prefix_as_a_generation_and_prunes_older_ones(home: Path) -> None:
    for number in range(3):
        mt.run(params(home, "begin"), False)
        make_prefix(home / "miniforge3", f"new{number}")
        result = mt.run(params(home, "commit", keep=2, miniforge_version="26.7.2-0"), False)
        assert not Path(result["journal"]).exists()
    kept = generations(home)
    assert len(kept) == 2
    markers = [(home / "miniforge3.generations" / ident / "marker").read_text() for ident in kept]
    assert markers == ["new1", "new0"]
    stamp = json.loads((home / "miniforge3" / mt.STAMP).read_text())
    assert stamp["miniforge_version"] == "26.7.2-0"


def test_keeping_no_generation_deletes_the_old_prefix_at_once(home: Path) -> None:
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    mt.run(params(home, "commit", keep=0), False)
    assert generations(home) == []
    assert (home / "miniforge3" / "marker").read_text() == "new"


def test_a_kill_during_the_commit_is_finished_not_undone(home: Path) -> None:
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    paths = mt.Paths(str(home / "miniforge3"), str(home / "miniforge3.generations"),
                     str(home / ".local/state/reforge/transactions"))
    journal = mt.read_journal(paths)
    journal.update(phase="committed", keep=1)
    mt.write_json(paths.journal, journal)
    mt.run(params(home, "recover"), False)
    assert (home / "miniforge3" / "marker").read_text() == "new"
    assert len(generations(home)) == 1


def test_rollback_swaps_back_in_well_under_a_second_and_can_be_rolled_back(home: Path) -> None:
    for number in range(2000):  # a prefix with many files: a rename does not care
        (home / "miniforge3" / f"f{number}").write_text("x")
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    mt.run(params(home, "commit"), False)
    first = mt.run(params(home, "switch"), False)
    assert (home / "miniforge3" / "marker").read_text() == "old"
    assert first["seconds"] < 0.5
    mt.run(params(home, "switch"), False)
    assert (home / "miniforge3" / "marker").read_text() == "new"
    assert len(generations(home)) == 1


def test_generation_zero_only_undoes_a_pending_rebuild(home: Path) -> None:
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    mt.run(params(home, "commit"), False)
    result = mt.run(params(home, "switch", generation=0), False)
    assert not result["changed"]
    assert (home / "miniforge3" / "marker").read_text() == "new"


def test_switch_to_a_missing_generation_is_refused(home: Path) -> None:
    with pytest.raises(mt.TransactionError, match="No generation 1"):
        mt.run(params(home, "switch"), False)
    assert (home / "miniforge3" / "marker").read_text() == "old"


def test_not_enough_free_space_refuses_before_anything_changes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (home / ".bashrc").read_bytes()
    monkeypatch.setattr(mt, "free_bytes", lambda _path: 1024)
    with pytest.raises(mt.TransactionError, match="Not enough free space"):
        mt.run(params(home, "begin"), False)
    assert (home / "miniforge3" / "marker").read_text() == "old"
    assert (home / ".bashrc").read_bytes() == before
    assert not (home / ".local/state/reforge/transactions").exists() or not any(
        (home / ".local/state/reforge/transactions").iterdir())


def test_a_symlinked_prefix_is_refused(tmp_path: Path, home: Path) -> None:
    real = home / "miniforge3"
    moved = tmp_path / "elsewhere"
    real.rename(moved)
    real.symlink_to(moved)
    with pytest.raises(mt.TransactionError, match="symlink"):
        mt.run(params(home, "begin"), False)
    assert (moved / "marker").read_text() == "old"


def test_check_mode_changes_nothing(home: Path) -> None:
    result = mt.run(params(home, "begin"), True)
    assert result["changed"]
    assert (home / "miniforge3" / "marker").read_text() == "old"
    assert not (home / ".local").exists()


def test_a_process_left_running_from_the_partial_prefix_is_stopped(home: Path) -> None:
    mt.run(params(home, "begin"), False)
    (home / "miniforge3" / "bin").mkdir(parents=True)
    sleeper = home / "miniforge3" / "bin" / "sleep"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", sleeper)
    process = subprocess.Popen([str(sleeper), "60"])
    try:
        time.sleep(0.2)
        result = mt.run(params(home, "recover"), False)
        assert process.wait(timeout=15) != 0
    finally:
        process.kill()
    assert any("stopped 1 process" in line for line in result["report"])
    assert (home / "miniforge3" / "marker").read_text() == "old"


def test_list_describes_the_prefix_and_its_generations(home: Path) -> None:
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    mt.run(params(home, "commit", miniforge_version="26.7.2-0"), False)
    listed = mt.run(params(home, "list"), False)["generations"]
    assert [entry["current"] for entry in listed] == [True, False]
    assert listed[0]["miniforge_version"] == "26.7.2-0"
    assert listed[1]["id"] == "1"
    assert listed[1]["conda_version"] == "24.11.3"
    assert listed[1]["conda_packages"] == 2
    assert listed[1]["size_bytes"] > 0


def simulate_mount(monkeypatch: pytest.MonkeyPatch, *mounted: Path) -> None:
    """Make the module see MOUNTED as mount points, as /proc/self/mountinfo would list them."""
    monkeypatch.setattr(mt, "mount_points", lambda: [os.path.realpath(path) for path in mounted], raising=False)


def test_pruning_never_deletes_into_a_mount_inside_a_generation(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new0")
    mt.run(params(home, "commit", keep=1), False)
    (oldest,) = generations(home)
    data = home / "miniforge3.generations" / oldest / "envs" / "datasets"
    data.mkdir(parents=True)
    (data / "weights.bin").write_bytes(b"not reproducible")
    simulate_mount(monkeypatch, data)
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new1")
    result = mt.run(params(home, "commit", keep=1), False)
    assert (data / "weights.bin").read_bytes() == b"not reproducible"
    assert any("mount point" in line for line in result["report"]), result["report"]
    assert (home / "miniforge3" / "marker").read_text() == "new1"


def test_keeping_no_generation_never_deletes_into_a_mount(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = home / "miniforge3" / "pkgs" / "shared-cache"
    data.mkdir(parents=True)
    (data / "big.tar.bz2").write_bytes(b"cache")
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    aside = next(home.glob("miniforge3.generations/*/pkgs/shared-cache"))
    simulate_mount(monkeypatch, aside)
    result = mt.run(params(home, "commit", keep=0), False)
    assert (aside / "big.tar.bz2").read_bytes() == b"cache"
    assert any("mount point" in line for line in result["report"]), result["report"]


def test_an_unreadable_mount_table_keeps_what_it_would_delete(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mt.run(params(home, "begin"), False)
    make_prefix(home / "miniforge3", "new")
    monkeypatch.setattr(mt, "mount_points", lambda: None, raising=False)
    result = mt.run(params(home, "commit", keep=0), False)
    (kept,) = generations(home)
    assert (home / "miniforge3.generations" / kept / "marker").read_text() == "old"
    assert any("mount" in line for line in result["report"]), result["report"]
