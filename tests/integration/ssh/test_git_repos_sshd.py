"""The git_repos role cloning over SSH from a real sshd, with the key ssh_keys deployed: clone, fast-forward, never force."""

from __future__ import annotations

import re
from pathlib import Path

from sshlab import SSH_ALIAS, Upstream, Workspace, assert_no_private_key, git, make_upstream


def over_ssh(upstream: Upstream) -> str:
    """The repository's URL through the ssh config alias that ssh_keys wrote."""
    return f"{SSH_ALIAS}:{upstream.bare}"


def head(checkout: Path) -> str:
    """The commit checked out in a clone."""
    return git("rev-parse", "HEAD", cwd=checkout)


def local_commit(checkout: Path, name: str) -> str:
    """Commit a new file in a clone without pushing it; return the commit."""
    (checkout / name).write_text(f"{name}\n", encoding="utf-8")
    git("add", name, cwd=checkout)
    git("commit", "--quiet", "-m", f"Local {name}", cwd=checkout)
    return head(checkout)


def reported(output: str, checkout: Path, status: str) -> bool:
    """Whether the run's report lists the checkout as left alone with this status."""
    return re.search(rf"{re.escape(str(checkout))} \| {status} \|", output) is not None


def test_clones_over_ssh_with_the_deployed_key_and_fast_forwards_later(workspace: Workspace) -> None:
    upstream = make_upstream(workspace.root, "project")
    workspace.variables["git_repos_repositories"] = [{"repo": over_ssh(upstream), "version": "main"}]

    first = workspace.converge()
    checkout = workspace.git_dir / "project"
    assert (checkout / "README.md").read_text(encoding="utf-8") == "# project\n"
    assert git("remote", "get-url", "origin", cwd=checkout) == over_ssh(upstream)
    assert head(checkout) == git("rev-parse", "HEAD", cwd=upstream.work)
    assert git("symbolic-ref", "--short", "HEAD", cwd=checkout) == "main"
    log = workspace.sshd.log.read_text(encoding="utf-8", errors="replace")
    assert f"Accepted publickey for {workspace.sshd.user}" in log

    new_commit = upstream.commit("CHANGES.md", "new upstream work\n")
    predicted = workspace.converge("--check", "--diff")
    assert predicted.changed == 1, str(predicted)
    assert head(checkout) != new_commit, "check mode must not update"

    updated = workspace.converge()
    assert updated.changed == 1, str(updated)
    assert head(checkout) == new_commit
    assert (checkout / "CHANGES.md").is_file()

    again = workspace.converge()
    checked = workspace.converge("--check", "--diff")
    assert again.changed == 0, str(again)
    assert checked.changed == 0, str(checked)
    assert first.changed >= 1
    assert_no_private_key(workspace.outputs, workspace.ssh_dir / "id_ed25519")


def test_dirty_ahead_and_diverged_checkouts_are_reported_and_left_alone(workspace: Workspace) -> None:
    names = ("dirty", "ahead", "diverged")
    upstreams = {name: make_upstream(workspace.root, name) for name in names}
    workspace.variables["git_repos_repositories"] = [{"repo": over_ssh(upstreams[name]), "dest": name} for name in names]
    workspace.converge()
    checkouts = {name: workspace.git_dir / name for name in names}

    (checkouts["dirty"] / "README.md").write_text("my unsaved work\n", encoding="utf-8")
    dirty_head = head(checkouts["dirty"])
    ahead_head = local_commit(checkouts["ahead"], "notes.md")
    diverged_head = local_commit(checkouts["diverged"], "experiment.md")
    upstreams["dirty"].commit("upstream.md", "upstream\n")
    upstreams["diverged"].commit("upstream.md", "upstream\n")

    predicted = workspace.converge("--check", "--diff")
    result = workspace.converge()

    assert predicted.changed == 0, str(predicted)
    assert result.changed == 0, str(result)
    assert (checkouts["dirty"] / "README.md").read_text(encoding="utf-8") == "my unsaved work\n"
    assert head(checkouts["dirty"]) == dirty_head
    assert head(checkouts["ahead"]) == ahead_head
    assert head(checkouts["diverged"]) == diverged_head
    assert git("status", "--porcelain", cwd=checkouts["ahead"]) == ""
    for name in names:
        assert reported(result.output, checkouts[name], name), f"{name} is not reported:\n{result.output}"
    assert "[WARNING]" in result.output
    assert_no_private_key(workspace.outputs, workspace.ssh_dir / "id_ed25519")


def test_a_checkout_whose_key_is_unprotected_cannot_fetch_until_ssh_keys_fixes_it(workspace: Workspace) -> None:
    upstream = make_upstream(workspace.root, "guarded")
    workspace.variables["git_repos_repositories"] = [{"repo": over_ssh(upstream)}]
    workspace.converge()
    checkout = workspace.git_dir / "guarded"
    new_commit = upstream.commit("later.md", "later\n")
    (workspace.ssh_dir / "id_ed25519").chmod(0o644)

    # git_repos alone (ssh_keys skipped) cannot fetch with a key that ssh refuses.
    refused = workspace.playbook("--start-at-task", "git_repos : Gather the connecting user's facts")
    assert refused.returncode != 0, str(refused)
    assert "UNPROTECTED PRIVATE KEY FILE" in refused.output
    assert head(checkout) != new_commit

    fixed = workspace.converge()
    assert head(checkout) == new_commit
    assert fixed.changed >= 2, "the key mode and the checkout both changed"
    assert_no_private_key(workspace.outputs, workspace.ssh_dir / "id_ed25519")
