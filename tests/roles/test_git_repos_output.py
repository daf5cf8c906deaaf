"""The git_repos role through one real ansible-playbook run: no URL credential is printed.

The module's own decisions are unit-tested in tests/unit/plugins/modules/test_git_checkout.py;
this runs the role at -vvv on this machine (a failing clone and a checkout left alone) and
reads everything Ansible prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.reforge.workstation.tests.unit.gitremote import GIT_TEST_ENV, Remote, git

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GIT_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main."""
    return Remote(tmp_path)


def test_the_role_prints_no_url_credentials_in_labels_warnings_reports_or_failures(remote: Remote, tmp_path: Path) -> None:
    """One real ansible-playbook run of the role at -vvv: a failing clone and a checkout left alone."""
    repo_root = REPO
    checkouts = tmp_path / "git"
    git("clone", "--quiet", remote.url, str(checkouts / "mine"))
    git("remote", "set-url", "origin", "https://teammate:ghp_TEAMMATE@example.invalid/o/r.git", cwd=checkouts / "mine")
    repositories = [
        {"repo": "https://reforge:tok3n-s3cret@127.0.0.1:9/x.git"},
        {"repo": "https://ghp_USERTOKEN@127.0.0.1:9/y.git", "dest": "y"},
        {"repo": "https://me:ghp_MINE@example.invalid/o/r.git", "dest": "mine"},
    ]
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{
        "name": "Run git_repos", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_facts": {"user_dir": str(tmp_path / "home")}},
        "roles": [{"role": str(repo_root / "roles" / "git_repos"), "git_repos_dir": str(checkouts),
                   "git_repos_repositories": repositories}],
    }]))
    bindir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_CONFIG": str(repo_root / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{bindir}:{os.environ['PATH']}"}
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", str(play), "-vvv",
                           "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"],
                          capture_output=True, text=True, env=env, check=False, timeout=300)
    output = proc.stdout + proc.stderr

    assert "(item=https://***@127.0.0.1:9/x.git)" in output and "(item=https://***@127.0.0.1:9/y.git)" in output, output
    assert "other_remote" in output and "[WARNING]" in output, output
    for secret in ("tok3n-s3cret", "ghp_USERTOKEN", "ghp_TEAMMATE", "ghp_MINE", "teammate:", "reforge:"):
        assert secret not in output, f"{secret} printed:\n{output}"
