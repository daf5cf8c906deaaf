"""The miniforge role against the real installer's shape (REAL-CONDA.md D14), on the stand-in.

ansible-playbook runs the role's install entry on this machine (local connection);
HOME and ansible_facts['user_dir'] are a scratch home. What is asserted is the prefix
and the role's own message, never that the play "ran".
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standin"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_miniforge_rc_files import facts, role  # noqa: E402
from test_standin_installer import STANDIN, clean_env, install  # noqa: E402


def test_a_prefix_killed_after_micromamba_is_known_as_a_conda_prefix(tmp_path: Path) -> None:
    """Miniforge writes PREFIX/micromamba, then links _conda to it: killed in between, only micromamba is there."""
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "miniforge3"
    killed = install(prefix, home, check=False, STANDIN_INTERRUPT_AFTER_MICROMAMBA="1")
    assert killed.returncode == 1 and sorted(p.name for p in prefix.iterdir()) == ["micromamba"]
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "ansible_facts": facts(home, "Linux")}

    refused = role(tmp_path, home, "install", extra)
    assert refused.returncode != 0
    # Not "not a conda prefix" (a directory reforge must never touch): the rebuild's advice.
    assert "not a conda prefix" not in refused.stdout, refused.stdout[-2000:]
    assert "exists but is not a working conda prefix" in refused.stdout
    assert sorted(p.name for p in prefix.iterdir()) == ["micromamba"]


def run_named(installer: Path, prefix: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run INSTALLER as `bash INSTALLER -b -p PREFIX`, under whatever name it has."""
    return subprocess.run(["bash", str(installer), "-b", "-p", str(prefix)], env=clean_env(home),
                          capture_output=True, text=True, check=False)


def test_a_local_installer_whose_name_does_not_end_in_sh_still_runs(tmp_path: Path) -> None:
    """The real installer refuses to run unless its own name ends in .sh."""
    home = tmp_path / "home"
    home.mkdir()
    local = tmp_path / "Miniforge3-offline"
    shutil.copyfile(STANDIN, local)
    refused = run_named(local, tmp_path / "direct", home)
    assert refused.returncode == 1 and "but not \".\" or \"source\"" in refused.stderr
    prefix = tmp_path / "miniforge3"
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "miniforge_shells": [],
             "miniforge_installer_path": str(local), "miniforge_version": "0.0.0-standin",
             "miniforge_installer_sha256": hashlib.sha256(local.read_bytes()).hexdigest(),
             "miniforge_installer_cache_dir": str(tmp_path / "cache"),
             "storage_links_storage_dir": str(tmp_path / "storage"),
             "ansible_facts": facts(home, "Linux")}
    done = role(tmp_path, home, "install", extra)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (prefix / "conda-meta" / "history").is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["Miniforge3-offline.sh"]
