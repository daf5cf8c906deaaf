"""Unit tests of roles/git_repos/library/git_checkout.py.

Most tests run the module against real repositories on local paths (git's local
transport), so the clone/fast-forward/leave-alone decisions are checked on real
git behaviour. Failures of the transport itself are simulated by patching
AnsibleModule.run_command.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

MODULE_PATH = Path(__file__).resolve().parents[2] / "roles" / "git_repos" / "library" / "git_checkout.py"


def load_module() -> ModuleType:
    """Import the module file that Ansible ships to the host."""
    spec = importlib.util.spec_from_file_location("reforge_git_checkout", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


git_checkout = load_module()

RunCheckout = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed committer and no user or system git config, for the tests and for the module."""
    monkeypatch.setenv("GIT_AUTHOR_NAME", "reforge test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@reforge.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "reforge test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@reforge.invalid")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git; return stdout, failing the test on error."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


class Remote:
    """A bare repository and a clone that pushes new commits to it."""

    def __init__(self, root: Path, name: str = "project") -> None:
        self.url = str(root / "server" / f"{name}.git")
        self.pusher = root / "pusher" / name
        git("init", "--quiet", "--bare", "--initial-branch=main", self.url)
        git("clone", "--quiet", self.url, str(self.pusher))
        git("checkout", "--quiet", "-b", "main", cwd=self.pusher)
        self.push("README.md", "# project\n")

    def push(self, name: str, content: str, branch: str = "main") -> str:
        """Commit a file and push it to branch; return the commit."""
        (self.pusher / name).write_text(content, encoding="utf-8")
        git("add", name, cwd=self.pusher)
        git("commit", "--quiet", "-m", f"Add {name}", cwd=self.pusher)
        git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=self.pusher)
        return git("rev-parse", "HEAD", cwd=self.pusher)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main."""
    return Remote(tmp_path)


@pytest.fixture
def run_checkout(capsys: pytest.CaptureFixture[str]) -> RunCheckout:
    """Run the module's main() with arguments; return its JSON result."""

    def run(check_mode: bool = False, diff: bool = False, **args: Any) -> dict[str, Any]:
        module_args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(module_args), pytest.raises(SystemExit):
            git_checkout.main()
        return json.loads(capsys.readouterr().out)

    return run


def commit_locally(checkout: Path, name: str) -> str:
    """Commit a new file without pushing it."""
    (checkout / name).write_text(f"{name}\n", encoding="utf-8")
    git("add", name, cwd=checkout)
    git("commit", "--quiet", "-m", f"Local {name}", cwd=checkout)
    return git("rev-parse", "HEAD", cwd=checkout)


def cloned(run_checkout: RunCheckout, remote: Remote, tmp_path: Path, **args: Any) -> Path:
    """Clone the remote into tmp_path/checkout through the module."""
    dest = tmp_path / "checkout"
    result = run_checkout(repo=remote.url, dest=str(dest), **args)
    assert result["status"] == "cloned", result
    return dest


def test_clone_into_absent_dest_checks_out_the_branch(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "checkout"
    result = run_checkout(repo=remote.url, dest=str(dest), version="main", diff=True)

    assert result["changed"] is True and result["status"] == "cloned"
    assert result["after"] == git("rev-parse", "HEAD", cwd=remote.pusher)
    assert result["branch"] == "main"
    assert (dest / "README.md").read_text(encoding="utf-8") == "# project\n"
    assert result["diff"]["after"].strip() == result["after"]


def test_clone_into_an_empty_directory(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "checkout"
    dest.mkdir()
    assert run_checkout(repo=remote.url, dest=str(dest))["status"] == "cloned"
    assert (dest / ".git").is_dir()


def test_check_mode_clone_reports_a_change_and_writes_nothing(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "checkout"
    result = run_checkout(repo=remote.url, dest=str(dest), check_mode=True)
    assert result["changed"] is True and result["status"] == "cloned"
    assert not dest.exists()


def test_current_checkout_reports_no_change(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    for check_mode in (False, True):
        result = run_checkout(repo=remote.url, dest=str(dest), check_mode=check_mode)
        assert result["changed"] is False and result["status"] == "current" and not result["left_alone"]


def test_new_remote_commits_are_predicted_in_check_mode_then_fast_forwarded(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    before = git("rev-parse", "HEAD", cwd=dest)
    new = remote.push("NEWS.md", "news\n")

    predicted = run_checkout(repo=remote.url, dest=str(dest), check_mode=True)
    assert predicted["changed"] is True and predicted["status"] == "updated" and predicted["behind"] == -1
    assert git("rev-parse", "HEAD", cwd=dest) == before
    assert git("rev-parse", "--verify", "--quiet", "refs/remotes/origin/main", cwd=dest) == before, "check mode must not fetch"

    updated = run_checkout(repo=remote.url, dest=str(dest), diff=True)
    assert updated["changed"] is True and updated["status"] == "updated"
    assert updated["before"] == before and updated["after"] == new and updated["behind"] == 1
    assert git("rev-parse", "HEAD", cwd=dest) == new
    assert updated["diff"]["before"].strip() == before

    assert run_checkout(repo=remote.url, dest=str(dest))["changed"] is False


def test_fetched_but_unmerged_commits_are_predicted_exactly_in_check_mode(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    remote.push("NEWS.md", "news\n")
    git("fetch", "--quiet", "origin", cwd=dest)

    predicted = run_checkout(repo=remote.url, dest=str(dest), check_mode=True)
    assert predicted["changed"] is True and predicted["behind"] == 1


def test_dirty_checkout_is_left_alone_with_its_changes_listed(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    (dest / "README.md").write_text("mine\n", encoding="utf-8")
    before = git("rev-parse", "HEAD", cwd=dest)
    remote.push("NEWS.md", "news\n")

    result = run_checkout(repo=remote.url, dest=str(dest))

    assert result["changed"] is False and result["left_alone"] is True and result["status"] == "dirty"
    assert result["dirty_files"] == [" M README.md"]
    assert any("local changes" in str(warning) for warning in result["warnings"]), result["warnings"]
    assert (dest / "README.md").read_text(encoding="utf-8") == "mine\n"
    assert git("rev-parse", "HEAD", cwd=dest) == before


def test_untracked_files_do_not_block_an_update(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    (dest / "scratch.ipynb").write_text("{}", encoding="utf-8")
    new = remote.push("NEWS.md", "news\n")

    result = run_checkout(repo=remote.url, dest=str(dest))
    assert result["status"] == "updated" and git("rev-parse", "HEAD", cwd=dest) == new
    assert (dest / "scratch.ipynb").read_text(encoding="utf-8") == "{}"


def test_untracked_file_in_the_way_blocks_the_update_and_is_kept(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    (dest / "NEWS.md").write_text("my own notes\n", encoding="utf-8")
    before = git("rev-parse", "HEAD", cwd=dest)
    remote.push("NEWS.md", "news\n")

    result = run_checkout(repo=remote.url, dest=str(dest))

    assert result["changed"] is False and result["status"] == "blocked" and result["left_alone"] is True
    assert (dest / "NEWS.md").read_text(encoding="utf-8") == "my own notes\n"
    assert git("rev-parse", "HEAD", cwd=dest) == before


def test_unpushed_commits_are_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    local = commit_locally(dest, "notes.md")

    for check_mode in (True, False):
        result = run_checkout(repo=remote.url, dest=str(dest), check_mode=check_mode)
        assert result["changed"] is False and result["status"] == "ahead" and result["ahead"] == 1
    assert git("rev-parse", "HEAD", cwd=dest) == local


def test_diverged_history_is_left_alone_and_predicted_in_check_mode(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    local = commit_locally(dest, "notes.md")
    remote.push("NEWS.md", "news\n")

    predicted = run_checkout(repo=remote.url, dest=str(dest), check_mode=True)
    assert predicted["changed"] is False and predicted["status"] == "diverged"

    result = run_checkout(repo=remote.url, dest=str(dest))
    assert result["changed"] is False and result["status"] == "diverged"
    assert (result["ahead"], result["behind"]) == (1, 1)
    assert git("rev-parse", "HEAD", cwd=dest) == local


def test_other_branch_is_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path, version="main")
    git("checkout", "--quiet", "-b", "experiment", cwd=dest)
    remote.push("NEWS.md", "news\n")

    result = run_checkout(repo=remote.url, dest=str(dest), version="main")
    assert result["status"] == "other_branch" and result["changed"] is False
    assert git("symbolic-ref", "--short", "HEAD", cwd=dest) == "experiment"


def test_branch_missing_on_the_remote_is_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    git("checkout", "--quiet", "-b", "local-only", cwd=dest)

    result = run_checkout(repo=remote.url, dest=str(dest))
    assert result["status"] == "no_upstream" and result["changed"] is False


def test_detached_head_is_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    git("checkout", "--quiet", "--detach", cwd=dest)
    remote.push("NEWS.md", "news\n")

    result = run_checkout(repo=remote.url, dest=str(dest))
    assert result["status"] == "detached" and result["branch"] is None and result["changed"] is False


def test_checkout_of_another_remote_is_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    other = Remote(tmp_path, "other")

    result = run_checkout(repo=other.url, dest=str(dest))
    assert result["status"] == "other_remote" and result["changed"] is False
    assert git("remote", "get-url", "origin", cwd=dest) == remote.url


def test_directory_that_is_not_a_checkout_is_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = tmp_path / "checkout"
    dest.mkdir()
    (dest / "data.csv").write_text("a,b\n", encoding="utf-8")

    result = run_checkout(repo=remote.url, dest=str(dest))
    assert result["status"] == "not_a_repository" and result["changed"] is False
    assert sorted(path.name for path in dest.iterdir()) == ["data.csv"]


def test_folder_inside_another_checkout_is_not_taken_for_a_checkout(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    outer = cloned(run_checkout, remote, tmp_path)
    inner = outer / "docs"
    inner.mkdir()
    (inner / "index.md").write_text("docs\n", encoding="utf-8")

    result = run_checkout(repo=remote.url, dest=str(inner))
    assert result["status"] == "not_a_repository"


class RecordingRunner:
    """Stands in for AnsibleModule.run_command (set on the class, so it is not bound): records calls and fails the git sub-command it is told to."""

    def __init__(self, failing: str, stderr: str) -> None:
        self.failing = failing
        self.stderr = stderr
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        self.calls.append((list(args), dict(kwargs.get("environ_update") or {})))
        if self.failing in args:
            return 128, "", self.stderr
        return 0, "", ""


def test_clone_failure_fails_with_git_error_and_passes_the_ssh_command(
    run_checkout: RunCheckout, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = RecordingRunner("clone", "git@example.invalid: Permission denied (publickey).")
    monkeypatch.setattr(basic.AnsibleModule, "run_command", runner)
    ssh_command = "ssh -i /home/u/.ssh/id_ed25519 -o IdentitiesOnly=yes"

    result = run_checkout(repo="git@example.invalid:o/r.git", dest=str(tmp_path / "r"), ssh_command=ssh_command, git_executable="/usr/bin/git")

    assert result["failed"] is True
    assert "Cloning git@example.invalid:o/r.git" in result["msg"] and "Permission denied (publickey)" in result["msg"]
    args, environ = runner.calls[0]
    assert args[:2] == ["/usr/bin/git", "clone"] and args[-2:] == ["git@example.invalid:o/r.git", str(tmp_path / "r")]
    assert environ["GIT_SSH_COMMAND"] == ssh_command
    assert environ["GIT_TERMINAL_PROMPT"] == "0"


def test_unreachable_remote_fails_instead_of_reporting_current(
    run_checkout: RunCheckout, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    real_run_command = basic.AnsibleModule.run_command

    def run_command(module: basic.AnsibleModule, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        if "ls-remote" in args:
            return 128, "", "ssh: connect to host example.invalid port 22: Connection refused"
        return real_run_command(module, args, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    result = run_checkout(repo=remote.url, dest=str(dest))

    assert result["failed"] is True
    assert "Asking remote origin for main failed" in result["msg"] and "Connection refused" in result["msg"]


def test_documented_return_keys_match_the_result(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    import yaml

    documented = set(yaml.safe_load(git_checkout.RETURN))
    result = run_checkout(repo=remote.url, dest=str(tmp_path / "checkout"))
    assert documented <= set(result), documented - set(result)
    assert set(git_checkout.new_result("r", "d")) - {"changed"} == documented
