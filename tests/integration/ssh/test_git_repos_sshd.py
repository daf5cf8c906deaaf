"""The git_repos role cloning over SSH from a real sshd, with the key ssh_keys deployed: clone, fast-forward, never force.

The decisions for each kind of checkout (and their check-mode predictions) are unit-tested
on real repositories in tests/unit/plugins/modules/test_git_checkout.py; these tests add the SSH
transport, the role's ssh command and its report, in the session's scenario (see scenario.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from scenario import REPOSITORIES, Scenario
from sshlab import git, run


def reported(output: str, checkout: Path, status: str) -> bool:
    """Whether the run's report lists the checkout as left alone with this status."""
    return re.search(rf"{re.escape(str(checkout))} \| {status} \|", output) is not None


def checkout_head(scenario: Scenario, stage: str, name: str) -> str:
    """The commit checked out in file_linked's checkout after the stage."""
    recorded = scenario.states[stage]["file_linked"].get(f"git/{name}")
    assert recorded is not None, f"no checkout {name} after {stage}: {scenario.states[stage]['file_linked']}"
    return recorded.split()[0]


def test_clones_over_ssh_with_the_deployed_key(scenario: Scenario) -> None:
    host = scenario.lab.hosts["file_linked"]
    upstreams = scenario.upstreams

    assert scenario.runs["converge"].host("file_linked").failed == 0, str(scenario.runs["converge"])
    for name in REPOSITORIES:
        checkout = host.git_dir / name
        assert checkout_head(scenario, "converge", name) == scenario.upstream_heads[name]
        assert scenario.states["converge"]["file_linked"][f"git/{name}"].endswith("''"), "a fresh clone is clean"
        assert (checkout / "README.md").is_file()
        assert git("remote", "get-url", "origin", cwd=checkout) == upstreams[name].over_ssh
    assert (host.git_dir / "project" / "README.md").read_text(encoding="utf-8") == "# project\n"
    assert git("symbolic-ref", "--short", "HEAD", cwd=host.git_dir / "project") == "main"

    # The clones were the only connections before the tests' own logins, all with the deployed key.
    fingerprint = run(["ssh-keygen", "-l", "-f", str(host.controller_public_key)]).stdout.split()[1]
    accepted = re.findall(rf"Accepted publickey for {re.escape(scenario.lab.sshd.user)} from 127\.0\.0\.1 .*ED25519 (\S+)", scenario.notes["sshd_log_after_converge"])
    assert accepted and set(accepted) == {fingerprint}, accepted
    assert len(accepted) == len(REPOSITORIES)


def test_converged_checkouts_stay_put_on_rerun_and_in_check_mode(scenario: Scenario) -> None:
    for stage in ("rerun", "check"):
        assert scenario.runs[stage].host("file_linked").changed == 0, str(scenario.runs[stage])
        for name in REPOSITORIES:
            assert scenario.states[stage]["file_linked"][f"git/{name}"] == scenario.states["converge"]["file_linked"][f"git/{name}"]


def test_repair_fast_forwards_and_leaves_dirty_ahead_and_diverged_checkouts_alone_and_reports_them(scenario: Scenario) -> None:
    host = scenario.lab.hosts["file_linked"]
    repair = scenario.runs["repair"]
    changed, repaired = scenario.states["changed"]["file_linked"], scenario.states["repair"]["file_linked"]

    assert repair.host("file_linked").failed == 0, str(repair)
    assert repair.host("file_linked").changed == 2, f"only the key mode and the project checkout change\n{repair}"

    new_commit = scenario.notes["project_new_commit"]
    assert checkout_head(scenario, "changed", "project") != new_commit
    assert checkout_head(scenario, "repair", "project") == new_commit
    assert (host.git_dir / "project" / "CHANGES.md").read_text(encoding="utf-8") == "new upstream work\n"

    # Left exactly as they were: the same commit and the same uncommitted changes.
    for name in ("dirty", "ahead", "diverged"):
        assert repaired[f"git/{name}"] == changed[f"git/{name}"], name
        assert reported(repair.output, host.git_dir / name, name), f"{name} is not reported:\n{repair.output}"
    assert "README.md" in changed["git/dirty"]
    assert (host.git_dir / "dirty" / "README.md").read_text(encoding="utf-8") == "my unsaved work\n"
    assert checkout_head(scenario, "repair", "dirty") == checkout_head(scenario, "converge", "dirty")
    for name in ("ahead", "diverged"):
        assert checkout_head(scenario, "repair", name) != checkout_head(scenario, "converge", name), f"{name} has its local commit"
    assert "[WARNING]" in repair.output


def test_code_planted_in_a_checkout_does_not_run_while_it_is_fast_forwarded(scenario: Scenario) -> None:
    # R8: hooks, fsmonitor, core.sshCommand and a credential helper planted in "project" before the repair.
    assert checkout_head(scenario, "repair", "project") == scenario.notes["project_new_commit"]
    assert sorted(p.name for p in (scenario.lab.root / "planted").iterdir()) == []
