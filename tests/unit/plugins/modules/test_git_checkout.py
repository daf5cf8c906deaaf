"""Unit tests of plugins/modules/git_checkout.py.

Most tests run the module against real repositories on local paths (git's local
transport), so the clone/fast-forward/leave-alone decisions are checked on real
git behaviour. Failures of the transport itself are simulated by patching
AnsibleModule.run_command.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.reforge.workstation.plugins.modules import git_checkout
from ansible_collections.reforge.workstation.tests.unit.gitremote import GIT_TEST_ENV, Remote, git

RunCheckout = Callable[..., dict[str, Any]]


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed committer and no user or system git config, for the tests and for the module."""
    for name, value in GIT_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main."""
    return Remote(tmp_path)


@pytest.fixture
def run_checkout(capsys: pytest.CaptureFixture[str], raised: dict[str, list[str]]) -> RunCheckout:
    """Run the module's main() with arguments; return its JSON result (what exit_json/fail_json print),
    with the warnings it raised in this run (see ``raised`` in conftest.py)."""

    def run(check_mode: bool = False, diff: bool = False, **args: Any) -> dict[str, Any]:
        module_args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        raised["warnings"].clear()
        with patch_module_args(module_args), pytest.raises(SystemExit):
            git_checkout.main()
        result = json.loads(capsys.readouterr().out)
        if raised["warnings"]:
            result["warnings"] = list(raised["warnings"])
        return result

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
    args, environ = next(call for call in runner.calls if "clone" in call[0])
    assert args[0] == "/usr/bin/git" and args[-2:] == ["git@example.invalid:o/r.git", str(tmp_path / "r")]
    assert "clone" in args and f"core.sshCommand={ssh_command}" in args
    assert args[1:args.index("clone")] == [part for setting in git_checkout.SAFE_CONFIG for part in ("-c", setting)] \
        + ["-c", f"core.sshCommand={ssh_command}"]
    assert environ["GIT_SSH_COMMAND"] == ssh_command
    assert environ["GIT_CONFIG_NOSYSTEM"] == "1" and environ["GIT_ASKPASS"] == ""
    assert environ["GIT_TERMINAL_PROMPT"] == "0"


def test_unreachable_remote_fails_instead_of_reporting_current(
    run_checkout: RunCheckout, remote: Remote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    real_run_command = basic.AnsibleModule.run_command

    def run_command(module: basic.AnsibleModule, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        if "--heads" in args:
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
    assert set(git_checkout.new_result("r", "d")) == documented


# Checkout-controlled code never runs (R8) ------------------------------------------
class Planted:
    """Commands a teammate could plant in a checkout's .git; each leaves a marker when it runs."""

    def __init__(self, root: Path) -> None:
        self.markers = root / "markers"
        self.markers.mkdir()

    def command(self, name: str) -> str:
        """A shell command that records that `name` ran (and then fails, to be noticed)."""
        return f"echo {name} ran as $(id -un) >> {self.markers / name}; false"

    def ran(self) -> list[str]:
        return sorted(path.name for path in self.markers.iterdir())

    def plant(self, checkout: Path) -> None:
        """Hooks, fsmonitor, a filter driver, an upload-pack wrapper, askpass and credential helpers."""
        for hook in ("post-merge", "post-checkout", "reference-transaction", "pre-auto-gc", "post-rewrite"):
            path = checkout / ".git" / "hooks" / hook
            path.write_text(f"#!/bin/sh\n{self.command(hook)}\n", encoding="utf-8")
            path.chmod(0o755)
        (checkout / ".git" / "info" / "attributes").write_text("* filter=planted\n", encoding="utf-8")
        planted_config = {
            "core.fsmonitor": self.command("fsmonitor"),
            "core.sshCommand": self.command("sshCommand"),
            "core.askPass": self.command("askPass"),
            "credential.helper": f"!{self.command('credential.helper')}",
            "credential.http://127.0.0.1.helper": f"!{self.command('credential.url.helper')}",
            "filter.planted.smudge": self.command("filter.smudge"),
            "filter.planted.clean": self.command("filter.clean"),
            "remote.origin.uploadpack": f"{self.command('uploadpack').replace('; false', ';')} git-upload-pack",
            "merge.verifySignatures": "true",
            "gpg.program": self.command("gpg.program"),
        }
        for key, value in planted_config.items():
            git("config", key, value, cwd=checkout)


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    return Planted(tmp_path)


def test_planted_hooks_fsmonitor_filters_and_upload_pack_do_not_run_on_update(
    run_checkout: RunCheckout, remote: Remote, tmp_path: Path, planted: Planted
) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    planted.plant(dest)
    new = remote.push("CHANGES.md", "new upstream work\n")

    result = run_checkout(repo=remote.url, dest=str(dest))

    assert planted.ran() == []
    assert result["status"] == "updated" and result["after"] == new, result
    assert (dest / "CHANGES.md").read_text(encoding="utf-8") == "new upstream work\n"


def test_planted_ssh_command_does_not_run(run_checkout: RunCheckout, remote: Remote, tmp_path: Path, planted: Planted) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    # An SSH remote on a closed local port: git must use our ssh, never the checkout's core.sshCommand.
    ssh_url = "ssh://reforge@127.0.0.1:9/project.git"
    git("remote", "set-url", "origin", ssh_url, cwd=dest)
    planted.plant(dest)

    for ssh_command in ("", "ssh -o BatchMode=yes -o ConnectTimeout=5"):
        result = run_checkout(repo=ssh_url, dest=str(dest), ssh_command=ssh_command)
        assert result["failed"] is True and "Asking remote origin" in result["msg"], result
    assert planted.ran() == []


def test_filter_drivers_from_a_shared_global_config_do_not_run_but_git_lfs_is_kept(
    run_checkout: RunCheckout, remote: Remote, tmp_path: Path, planted: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Paperspace ~/.gitconfig is a link into /storage: a teammate can define a driver there.
    global_config = tmp_path / "gitconfig"
    global_config.write_text(
        f"[filter \"shared\"]\n\tsmudge = {planted.command('global.smudge')}\n\tclean = {planted.command('global.clean')}\n"
        "[filter \"lfs\"]\n\tclean = git-lfs clean -- %f\n\tsmudge = git-lfs smudge -- %f\n"
        "\tprocess = git-lfs filter-process\n\trequired = true\n", encoding="utf-8")
    remote.push(".gitattributes", "*.md filter=shared\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    dest = cloned(run_checkout, remote, tmp_path)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # the pusher's own git runs no filter
    remote.push("CHANGES.md", "new upstream work\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))

    result = run_checkout(repo=remote.url, dest=str(dest))

    assert planted.ran() == []
    assert result["status"] == "updated", result
    assert (dest / "CHANGES.md").read_text(encoding="utf-8") == "new upstream work\n"
    # The canonical git-lfs driver is the only one kept.
    module = basic.AnsibleModule.__new__(basic.AnsibleModule)
    runner = git_checkout.Git(module, "git", "")
    monkeypatch.setattr(module, "run_command", lambda args, **kw: (
        0, subprocess.run(args, capture_output=True, text=True, check=False).stdout, ""), raising=False)
    kept = runner._filter_overrides(str(dest))
    assert "filter.shared.smudge=" in kept and not any(setting.startswith("filter.lfs.") for setting in kept)


class Unauthorized(BaseHTTPRequestHandler):
    """An HTTP git server that asks every client for credentials."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="reforge"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return


@pytest.fixture
def asking_server() -> Iterator[str]:
    """Base URL of a local HTTP server that answers 401 to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_planted_credential_helpers_and_askpass_do_not_run(
    run_checkout: RunCheckout, remote: Remote, tmp_path: Path, planted: Planted, asking_server: str
) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    url = f"{asking_server}/project.git"
    git("remote", "set-url", "origin", url, cwd=dest)
    planted.plant(dest)

    result = run_checkout(repo=url, dest=str(dest))

    assert result["failed"] is True, result
    assert planted.ran() == []


def test_credentials_in_urls_never_appear_in_the_result(
    run_checkout: RunCheckout, remote: Remote, tmp_path: Path, asking_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    token_url = asking_server.replace("http://", "http://reforge:tok3n-s3cret@") + "/project.git"
    failed = run_checkout(repo=token_url, dest=str(tmp_path / "fresh"))
    assert failed["failed"] is True
    assert "tok3n-s3cret" not in json.dumps(failed), failed
    assert "http://***@127.0.0.1" in failed["msg"], failed["msg"]

    dest = cloned(run_checkout, remote, tmp_path)
    other = run_checkout(repo="https://x-access-token:ghp_T0KEN@example.invalid/o/r.git", dest=str(dest))
    assert other["status"] == "other_remote" and "https://***@example.invalid/o/r.git" in other["msg"], other
    assert "ghp_T0KEN" not in json.dumps(other) and "x-access-token" not in json.dumps(other)
    git("remote", "set-url", "origin", "https://me:ghp_LOCAL@example.invalid/o/r.git", cwd=dest)
    again = run_checkout(repo=remote.url, dest=str(dest))
    assert "ghp_LOCAL" not in json.dumps(again), again


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pass@host/o/r.git", "https://***@host/o/r.git"),
    ("https://ghp_abc@host/o/r.git", "https://***@host/o/r.git"),
    ("ssh://git@host/o/r.git", "ssh://git@host/o/r.git"),
    ("ssh://git:pw@host/o/r.git", "ssh://***@host/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("fatal: unable to access 'https://u:p@h/r/': 401", "fatal: unable to access 'https://***@h/r/': 401"),
])
def test_redact_hides_userinfo_that_can_carry_a_secret(url: str, shown: str) -> None:
    assert git_checkout.redact(url) == shown


def test_a_checkout_whose_config_redirects_the_remote_is_left_alone(run_checkout: RunCheckout, remote: Remote, tmp_path: Path) -> None:
    dest = cloned(run_checkout, remote, tmp_path)
    other = Remote(tmp_path / "elsewhere", "other")
    git("config", f"url.{other.url}.insteadOf", remote.url, cwd=dest)
    before = git("rev-parse", "HEAD", cwd=dest)
    other.push("evil.md", "from elsewhere\n")

    result = run_checkout(repo=remote.url, dest=str(dest))

    assert result["status"] == "other_remote" and "insteadOf" in result["msg"], result
    assert git("rev-parse", "HEAD", cwd=dest) == before and not (dest / "evil.md").exists()
