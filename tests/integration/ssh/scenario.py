"""The staged scenario that every SSH test reads: four ansible-playbook runs over temporary homes.

Each home is an inventory host with its own key source, so one run covers several of them:

- ``file_linked``: source file; ``~/.ssh`` is a symlink into storage, with a 0755 mode and
  the user's own config entry; git_repos clones four repositories over SSH through it.
- ``vars_source``: source vars, the private key without its final newline.
- ``generate_new``: source generate on an empty home; its key is authorized afterwards with
  a forced command that answers like GitHub (authenticated, no shell, exit 1).
- ``generate_existing``: source generate with a private key (0640) and no public key; the
  server never learns this key.
- ``none_source``: source none, with a key of mode 0644 and a public key of 0600 in a 0755 ``~/.ssh``.
- ``file_fresh``: source file and one repository, added only for the check run, so that
  check mode meets a new home there while it meets converged homes on the other hosts.

The runs (each ansible-playbook run costs seconds per host, so a host only takes part in
the runs whose code paths it adds):

1. ``converge`` (-vvv): every host but file_fresh.
2. ``rerun`` (--tags all,ssh_keys_check): file_linked and generate_new.
3. ``check`` (--check --diff -vvv): file_linked, vars_source, generate_new, and file_fresh.
4. ``repair`` (--tags all,ssh_keys_check): file_linked, after its key was loosened and its
   checkouts and their upstreams were changed; and generate_existing, converged but with a
   key the server does not know, so that its check must fail.

Once converged, generate_existing takes generate_new's path, and none_source runs only the
mode tasks that every host runs, so neither is in the check run; vars_source's rerun is
the check run's prediction (the same copy comparison) plus a login the test makes itself.

The state on disk and the results of real ssh logins are recorded between the runs, so
each test asserts on real state whatever order the tests run in.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sshlab import Lab, PlaybookRun, Sshd, Upstream, git, local_commit, make_upstream, run

GITHUB_GREETING = "Hi reforge! You have successfully authenticated, but GitHub does not provide shell access."
USER_CONFIG = "Host other.example\n    User someone\n"
REPOSITORIES = ("project", "dirty", "ahead", "diverged")
RERUN_HOSTS = ("file_linked", "generate_new")
CONVERGED_CHECK_HOSTS = ("file_linked", "vars_source", "generate_new")
CHECK_HOSTS = (*CONVERGED_CHECK_HOSTS, "file_fresh")
REPAIR_HOSTS = ("file_linked", "generate_existing")


@dataclass
class Scenario:
    """What the runs printed, and what the disk and real ssh showed after each of them."""

    lab: Lab
    upstreams: dict[str, Upstream]
    runs: dict[str, PlaybookRun] = field(default_factory=dict)
    states: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    logins: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    upstream_heads: dict[str, str] = field(default_factory=dict)

    def record(self, stage: str) -> None:
        """Keep every host's state on disk after a stage."""
        self.states[stage] = {name: host.snapshot() for name, host in self.lab.hosts.items()}

    def apply(self, stage: str, *extra: str) -> PlaybookRun:
        """Run the playbook over every host and record the state it leaves."""
        self.runs[stage] = self.lab.playbook(*extra)
        self.record(stage)
        return self.runs[stage]


def prepare(lab: Lab) -> dict[str, Upstream]:
    """Create the five homes as they are before the roles first run, and the upstream repositories."""
    linked = lab.add("file_linked", "file")
    storage_ssh = linked.root / "storage" / ".ssh"
    storage_ssh.mkdir(parents=True)
    storage_ssh.chmod(0o755)
    (storage_ssh / "config").write_text(USER_CONFIG, encoding="utf-8")
    linked.ssh_dir.symlink_to(storage_ssh)
    upstreams = {name: make_upstream(lab.root, name) for name in REPOSITORIES}
    linked.variables["git_repos_repositories"] = [
        {"repo": upstreams["project"].over_ssh, "version": "main"},
        *({"repo": upstreams[name].over_ssh, "dest": name} for name in REPOSITORIES[1:]),
    ]

    plain = lab.add("vars_source", "vars")
    # Without the final newline, as a vault or a YAML block often gives it; the role puts it back.
    plain.variables["ssh_keys_private_key"] = plain.controller_key.read_text(encoding="utf-8").rstrip("\n")
    plain.variables["ssh_keys_public_key"] = plain.controller_public_key.read_text(encoding="utf-8")

    # Neither generated key is known to the server yet.
    lab.add("generate_new", "generate", authorize=False)
    existing = lab.add("generate_existing", "generate", authorize=False)
    existing.ssh_dir.mkdir(mode=0o700)
    existing.key.write_bytes(existing.controller_key.read_bytes())
    existing.key.chmod(0o640)

    kept = lab.add("none_source", "none")
    kept.ssh_dir.mkdir()
    kept.ssh_dir.chmod(0o755)
    kept.key.write_bytes(kept.controller_key.read_bytes())
    kept.key.chmod(0o644)
    public = kept.ssh_dir / "id_ed25519.pub"
    public.write_bytes(kept.controller_public_key.read_bytes())
    public.chmod(0o600)
    return upstreams


def plant_code(checkout: Path, markers: Path) -> None:
    """What a teammate with write access to storage could plant: each leaves a marker if git runs it (R8)."""
    markers.mkdir()
    def command(name: str) -> str:
        return f"echo {name} ran as $(id -un) >> {markers / name}; false"
    for hook in ("post-merge", "post-checkout", "reference-transaction"):
        (checkout / ".git" / "hooks" / hook).write_text(f"#!/bin/sh\n{command(hook)}\n", encoding="utf-8")
        (checkout / ".git" / "hooks" / hook).chmod(0o755)
    for key, value in {"core.fsmonitor": command("fsmonitor"), "core.sshCommand": command("sshCommand"),
                       "credential.helper": f"!{command('credential.helper')}"}.items():
        git("config", key, value, cwd=checkout)


def change_everything(scenario: Scenario) -> None:
    """Between the check run and the repair run: loosen a key, change the checkouts and their upstreams."""
    lab, upstreams = scenario.lab, scenario.upstreams
    linked = lab.hosts["file_linked"]
    checkouts = {name: linked.git_dir / name for name in REPOSITORIES}

    scenario.notes["project_new_commit"] = upstreams["project"].commit("CHANGES.md", "new upstream work\n")
    (checkouts["dirty"] / "README.md").write_text("my unsaved work\n", encoding="utf-8")
    local_commit(checkouts["ahead"], "notes.md")
    local_commit(checkouts["diverged"], "experiment.md")
    upstreams["dirty"].commit("upstream.md", "upstream\n")
    upstreams["diverged"].commit("upstream.md", "upstream\n")

    plant_code(checkouts["project"], lab.root / "planted")

    linked.key.chmod(0o644)
    scenario.logins["file_linked loose key"] = linked.ssh("true")
    scenario.record("changed")


def play(root: Path, sshd: Sshd) -> Scenario:
    """Run the whole scenario once; the tests only read what it recorded."""
    lab = Lab(root=root, sshd=sshd)
    scenario = Scenario(lab=lab, upstreams=prepare(lab))
    scenario.record("new")

    scenario.apply("converge", "-vvv")
    # Read before any test login, so its entries come from the clones alone.
    scenario.notes["sshd_log_after_converge"] = sshd.log.read_text(encoding="utf-8", errors="replace")
    scenario.upstream_heads = {name: git("rev-parse", "HEAD", cwd=upstream.work) for name, upstream in scenario.upstreams.items()}
    linked = lab.hosts["file_linked"]
    scenario.notes["known_hosts_fingerprints"] = run(["ssh-keygen", "-l", "-f", str(linked.ssh_dir / "known_hosts")]).stdout
    scenario.notes["known_hosts_server_entry"] = run(
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(linked.ssh_dir / "known_hosts")], check=False
    ).stdout
    scenario.notes["config_after_converge"] = (linked.ssh_dir / "config").read_text(encoding="utf-8")
    for name, host in lab.hosts.items():
        scenario.logins[f"{name} converged"] = host.ssh("echo", "reforge-login-ok")
    # Answer like GitHub: authenticated, no shell, exit 1.
    generated = lab.hosts["generate_new"]
    sshd.authorize(generated.ssh_dir / "id_ed25519.pub", f"command=\"echo '{GITHUB_GREETING}' >&2; exit 1\"")
    scenario.logins["generate_new greeting"] = generated.ssh()

    scenario.apply("rerun", "--tags", "all,ssh_keys_check", "--limit", ",".join(RERUN_HOSTS))

    fresh = lab.add("file_fresh", "file")
    fresh.variables["git_repos_repositories"] = [{"repo": scenario.upstreams["project"].over_ssh}]
    scenario.record("before_check")
    scenario.apply("check", "--check", "--diff", "-vvv", "--limit", ",".join(CHECK_HOSTS))

    change_everything(scenario)
    scenario.apply("repair", "--tags", "all,ssh_keys_check", "--limit", ",".join(REPAIR_HOSTS))
    scenario.logins["file_linked repaired"] = linked.ssh("true")
    return scenario
