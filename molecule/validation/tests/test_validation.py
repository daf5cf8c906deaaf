"""validation: every bad value is refused before anything changes, through the playbooks users run.

One converged host (user dev: the base environment in ~/miniforge3, the Paperspace
roles with storage in ~/storage). Each case of the table runs one playbook with one
bad value and asserts: a non-zero exit, a failure message that names the variable,
no task reported as changed, and the home (with the prefix and the storage tree)
exactly as it was, by a listing and a content checksum taken before and after.
Cases marked `check` run a second time with --check and must be refused the same way.
Teardown cases plant a sentinel where the deletion would aim and assert it survives.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import pytest

HOST = "validation-host"
HOME = "/home/dev"
PREFIX = f"{HOME}/miniforge3"

# One listing of the whole home (the prefix and the storage tree are inside it):
# path, type, size, mode, owner, mtime, link target; then a content checksum of every
# regular file outside the prefix; then the scratch folder outside the home that teardown cases
# plant into. ~/.ansible is Ansible's own scratch space.
STATE_SCRIPT = r"""
cd /home/dev || exit 1
find . -path ./.ansible -prune -o -printf '%p %y %s %m %U %T@ %l\n' | LC_ALL=C sort
echo "contents $(find . \( -path ./.ansible -o -path ./miniforge3 \) -prune -o -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum)"
find /tmp/reforge-outside -printf 'outside %p %y %s %m %U %T@ %l\n' 2>/dev/null | LC_ALL=C sort
"""


def in_container(command: str, user: str = "root") -> str:
    exit_code, output = docker.from_env().containers.get(HOST).exec_run(["sh", "-c", command], user=user)
    assert exit_code == 0, f"{command!r} failed: {output.decode()}"
    return output.decode()


def host_state() -> list[str]:
    return in_container(STATE_SCRIPT).splitlines()


@dataclass(frozen=True)
class Case:
    """One bad value: the playbook a user would run, the -e values, the variable the refusal names."""

    id: str
    playbook: str
    extra: dict[str, Any]
    variable: str
    check: bool = False
    # Shell commands run as dev before the case (planted sentinels), and paths that must survive.
    plant: str = ""
    sentinels: tuple[str, ...] = ()
    cleanup: str = ""


REBUILD = "playbooks/rebuild_base.yml"
BASE = "playbooks/base.yml"
TEARDOWN = "playbooks/teardown.yml"
PAPERSPACE = "playbooks/paperspace.yml"
STARTUP = "playbooks/startup.yml"
DOCTOR = "playbooks/doctor.yml"
USER_CONFIG = {"miniforge_remove_user_config": True}

CASES = [
    # base_env, through the rebuild (which tears down first) and the converge.
    Case("rebuild-state-typo", REBUILD, {"base_env_state": "newest"}, "base_env_state", check=True),
    Case("base-state-typo", BASE, {"base_env_state": "newest"}, "base_env_state"),
    Case("snapshot-keep-zero", REBUILD, {"base_env_snapshot_keep": 0}, "base_env_snapshot_keep", check=True),
    Case("snapshot-keep-negative", REBUILD, {"base_env_snapshot_keep": -1}, "base_env_snapshot_keep"),
    Case("snapshot-keep-not-int", REBUILD, {"base_env_snapshot_keep": "many"}, "base_env_snapshot_keep"),
    Case("empty-conda-package", REBUILD, {"base_env_conda_packages": ["fastcore", ""]}, "base_env_conda_packages"),
    Case("blank-pip-package", BASE, {"base_env_pip_packages": [" "]}, "base_env_pip_packages"),
    Case("empty-verify-import", REBUILD, {"base_env_verify_imports": ["fastcore", ""]}, "base_env_verify_imports"),
    Case("verify-import-not-a-module", BASE, {"base_env_verify_imports": ["os; import shutil"]},
         "base_env_verify_imports"),
    Case("empty-channel", BASE, {"base_env_channels": [""]}, "base_env_channels"),
    Case("environment-without-name", REBUILD, {"base_env_environments": [{"name": "", "packages": ["numpy"]}]},
         "base_env_environments"),
    Case("environment-bad-state", BASE, {"base_env_environments": [{"name": "x", "state": "gone"}]},
         "base_env_environments"),
    Case("environment-empty-package", BASE, {"base_env_environments": [{"name": "x", "packages": [""]}]},
         "base_env_environments"),
    Case("snapshot-dir-relative", REBUILD, {"base_env_snapshot_dir": "snapshots"}, "base_env_snapshot_dir"),
    # miniforge: installer and configuration values.
    Case("sha256-short", REBUILD, {"miniforge_installer_sha256": "abc123"}, "miniforge_installer_sha256",
         check=True),
    Case("sha256-not-hex", BASE, {"miniforge_installer_sha256": "z" * 64}, "miniforge_installer_sha256"),
    Case("base-url-no-scheme", REBUILD, {"miniforge_base_url": "github.com/conda-forge/miniforge"},
         "miniforge_base_url", check=True),
    Case("base-url-not-url", BASE, {"miniforge_base_url": "not a url"}, "miniforge_base_url"),
    Case("installer-url-scheme", BASE, {"miniforge_installer_url": "javascript:alert(1)"},
         "miniforge_installer_url"),
    Case("version-empty", REBUILD, {"miniforge_version": ""}, "miniforge_version"),
    Case("shell-fish", REBUILD, {"miniforge_shells": ["fish"]}, "miniforge_shells"),
    Case("channel-priority", BASE, {"miniforge_channel_priority": "high"}, "miniforge_channel_priority"),
    Case("empty-miniforge-channel", BASE, {"miniforge_channels": ["conda-forge", ""]}, "miniforge_channels"),
    Case("empty-pkgs-dir", REBUILD, {"miniforge_pkgs_dirs": [""]}, "miniforge_pkgs_dirs"),
    Case("miniforge-state", BASE, {"miniforge_state": "removed"}, "miniforge_state"),
    # The prefix rules, the same in every playbook and in --check.
    Case("prefix-space", REBUILD, {"miniforge_prefix": f"{HOME}/mini forge"}, "miniforge_prefix", check=True),
    Case("prefix-single-quote", BASE, {"miniforge_prefix": f"{HOME}/mini'forge"}, "miniforge_prefix",
         check=True),
    Case("prefix-double-quote", BASE, {"miniforge_prefix": f'{HOME}/mini"forge'}, "miniforge_prefix"),
    Case("prefix-newline", BASE, {"miniforge_prefix": f"{HOME}/mini\nforge"}, "miniforge_prefix", check=True),
    Case("prefix-backtick", REBUILD, {"miniforge_prefix": f"{HOME}/mini`id`forge"}, "miniforge_prefix"),
    Case("prefix-dollar", BASE, {"miniforge_prefix": f"{HOME}/mini$USER"}, "miniforge_prefix"),
    Case("prefix-backslash", BASE, {"miniforge_prefix": f"{HOME}/mini\\forge"}, "miniforge_prefix"),
    Case("prefix-tab", TEARDOWN, {"miniforge_prefix": f"{HOME}/mini\tforge"}, "miniforge_prefix"),
    # An -e value outranks anything a playbook sets, so a ~ there cannot be expanded: refused, naming the path.
    Case("prefix-tilde-in-extra-vars", BASE, {"miniforge_prefix": "~/miniforge3"}, "miniforge_prefix"),
    Case("prefix-relative", REBUILD, {"miniforge_prefix": "miniforge3"}, "miniforge_prefix"),
    Case("prefix-dotdot", TEARDOWN, {"miniforge_prefix": f"{HOME}/miniforge3/../miniforge3"}, "miniforge_prefix"),
    Case("legacy-prefix-quote", TEARDOWN, {"miniforge_remove_legacy": True,
                                           "miniforge_legacy_prefixes": [f"{HOME}/mamba'forge"]},
         "miniforge_legacy_prefixes"),
    # Deletions outside the prefix: the sentinel where they would aim must survive.
    Case("condarc-is-a-directory", TEARDOWN, {**USER_CONFIG, "miniforge_condarc_path": f"{HOME}/notes"},
         "miniforge_condarc_path", check=True,
         plant=f"mkdir -p {HOME}/notes && echo keep > {HOME}/notes/sentinel",
         sentinels=(f"{HOME}/notes/sentinel",), cleanup=f"rm -rf {HOME}/notes"),
    Case("condarc-is-the-home", TEARDOWN, {**USER_CONFIG, "miniforge_condarc_path": HOME},
         "miniforge_condarc_path", plant=f"echo keep > {HOME}/sentinel", sentinels=(f"{HOME}/sentinel",),
         cleanup=f"rm -f {HOME}/sentinel"),
    Case("condarc-outside-home", TEARDOWN, {**USER_CONFIG, "miniforge_condarc_path": "/tmp/reforge-outside/condarc"},
         "miniforge_condarc_path", check=True,
         plant="mkdir -p /tmp/reforge-outside && echo keep > /tmp/reforge-outside/condarc",
         sentinels=("/tmp/reforge-outside/condarc",), cleanup="rm -rf /tmp/reforge-outside"),
    Case("condarc-link-out-of-home", TEARDOWN, {**USER_CONFIG, "miniforge_condarc_path": f"{HOME}/linked.condarc"},
         "miniforge_condarc_path",
         plant=("mkdir -p /tmp/reforge-outside && echo keep > /tmp/reforge-outside/condarc"
                f" && ln -s /tmp/reforge-outside/condarc {HOME}/linked.condarc"),
         sentinels=("/tmp/reforge-outside/condarc", f"{HOME}/linked.condarc"),
         cleanup=f"rm -rf /tmp/reforge-outside {HOME}/linked.condarc"),
    Case("dot-conda-holds-user-data", TEARDOWN, USER_CONFIG, "miniforge_remove_user_config", check=True,
         plant=f"mkdir -p {HOME}/.conda && echo keep > {HOME}/.conda/my-notes.txt",
         sentinels=(f"{HOME}/.conda/my-notes.txt",), cleanup=f"rm -f {HOME}/.conda/my-notes.txt"),
    Case("dot-conda-is-a-link", TEARDOWN, USER_CONFIG, "miniforge_remove_user_config",
         plant=(f"mkdir -p /tmp/reforge-outside/conda && echo keep > /tmp/reforge-outside/conda/environments.txt"
                f" && mv {HOME}/.conda {HOME}/.conda.aside 2>/dev/null; ln -s /tmp/reforge-outside/conda {HOME}/.conda"),
         sentinels=("/tmp/reforge-outside/conda/environments.txt",),
         cleanup=(f"rm -f {HOME}/.conda && rm -rf /tmp/reforge-outside"
                  f" && if [ -e {HOME}/.conda.aside ]; then mv {HOME}/.conda.aside {HOME}/.conda; fi")),
    # Paperspace roles: a bad value is refused before storage_links moves anything.
    Case("ssh-source-typo", PAPERSPACE, {"ssh_keys_source": "files"}, "ssh_keys_source", check=True),
    Case("ssh-host-missing", PAPERSPACE, {"ssh_keys_hosts": [{"hostname": "example.org"}]}, "ssh_keys_hosts"),
    Case("ssh-port-out-of-range", PAPERSPACE, {"ssh_keys_hosts": [{"host": "x", "port": 70000}]}, "ssh_keys_hosts"),
    Case("ssh-key-name-escapes", PAPERSPACE, {"ssh_keys_name": "../id_ed25519"}, "ssh_keys_name"),
    Case("ssh-file-source-without-file", PAPERSPACE, {"ssh_keys_source": "file"}, "ssh_keys_private_key_file"),
    Case("ssh-empty-known-host", PAPERSPACE, {"ssh_keys_known_hosts_extra": [""]}, "ssh_keys_known_hosts_extra"),
    Case("git-repo-missing", PAPERSPACE, {"git_repos_repositories": [{"dest": "notes"}]}, "git_repos_repositories",
         check=True),
    Case("git-dest-escapes", PAPERSPACE, {"git_repos_repositories": [{"repo": "gitserver:a.git", "dest": "../a"}]},
         "git_repos_repositories"),
    Case("git-dir-mode", PAPERSPACE, {"git_repos_dir_mode": "999"}, "git_repos_dir_mode"),
    Case("prerun-timeout-negative", PAPERSPACE, {"prerun_timeout": -1}, "prerun_timeout", check=True),
    Case("prerun-log-bytes-negative", PAPERSPACE, {"prerun_log_max_bytes": -5}, "prerun_log_max_bytes"),
    Case("prerun-lock-timeout-negative", PAPERSPACE, {"prerun_lock_timeout": -3}, "prerun_lock_timeout"),
    Case("prerun-log-keep-negative", PAPERSPACE, {"prerun_log_keep": -1}, "prerun_log_keep"),
    Case("prerun-backup-bytes-negative", PAPERSPACE, {"prerun_backup_max_bytes": -1}, "prerun_backup_max_bytes"),
    Case("storage-backup-keep-negative", PAPERSPACE, {"storage_links_backup_keep": -2}, "storage_links_backup_keep"),
    Case("prerun-empty-pip-package", PAPERSPACE, {"prerun_pip_user_packages": ["six", ""]},
         "prerun_pip_user_packages"),
    Case("prerun-empty-conda-package", PAPERSPACE, {"prerun_conda_packages": [""]}, "prerun_conda_packages"),
    Case("prerun-runner", PAPERSPACE, {"prerun_startup_runner": "ansible"}, "prerun_startup_runner"),
    Case("storage-mode-not-octal", PAPERSPACE, {"storage_links_host_entries": [{"name": ".ssh", "mode": "0800"}]},
         "storage_links_host_entries", check=True),
    Case("storage-mode-word", PAPERSPACE, {"storage_links_entries": [{"name": ".ssh", "mode": "rwx"}]},
         "storage_links_entries"),
    Case("storage-mode-unquoted", PAPERSPACE, {"storage_links_entries": [{"name": ".netrc", "kind": "file", "mode": 384}]},
         "storage_links_entries"),
    Case("storage-entry-escapes", PAPERSPACE, {"storage_links_host_entries": [{"name": "../outside"}]},
         "storage_links_host_entries", check=True),
    Case("storage-entry-absolute", PAPERSPACE, {"storage_links_group_entries": [{"name": "/etc"}]},
         "storage_links_group_entries"),
    Case("storage-entry-kind", PAPERSPACE, {"storage_links_entries": [{"name": ".vim", "kind": "link"}]},
         "storage_links_entries"),
    Case("storage-entry-empty", PAPERSPACE, {"storage_links_entries": [{"name": ".local"}, {"name": ""}]},
         "storage_links_entries"),
    Case("storage-entry-unknown-key", PAPERSPACE, {"storage_links_entries": [{"name": ".vim", "modes": "0700"}]},
         "storage_links_entries"),
    Case("storage-entry-is-home", PAPERSPACE, {"storage_links_host_entries": [{"name": "."}]},
         "storage_links_host_entries"),
    # The variables before 1.0 are refused, not silently ignored.
    Case("storage-retired-dirs", PAPERSPACE, {"storage_links_dirs": [".local"]}, "storage_links_dirs", check=True),
    Case("prerun-retired-modes", PAPERSPACE, {"prerun_link_modes": {".ssh": "0700"}}, "prerun_link_modes"),
    Case("doctor-retired-secrets", DOCTOR, {"doctor_secret_entries": [".ssh"]}, "doctor_secret_entries"),
    # The startup playbook and the doctor check the same way.
    Case("startup-git-repo-empty", STARTUP, {"git_repos_repositories": [{"repo": ""}]}, "git_repos_repositories"),
    Case("startup-storage-escapes", STARTUP, {"storage_links_entries": [{"name": "a/../../b"}]},
         "storage_links_entries"),
    Case("doctor-entry-escapes", DOCTOR, {"storage_links_host_entries": [{"name": "../x"}]},
         "storage_links_host_entries"),
    Case("doctor-warn-negative", DOCTOR, {"doctor_disk_warn_gib": -1}, "doctor_disk_warn_gib"),
    Case("doctor-empty-command", DOCTOR, {"doctor_commands": [""]}, "doctor_commands"),
]

RUNS = [(case, ()) for case in CASES] + [(case, ("--check", "--diff")) for case in CASES if case.check]
# Cases that plant something run one at a time; the others run a few at once, bracketed by one
# before/after state of the host: a change by any of them fails every case of the batch.
WORKERS = 3


@dataclass
class Refusal:
    run: Any
    before: list[str]
    after: list[str]


def run_id(case: Case, args: tuple[str, ...]) -> str:
    return case.id + ("--check" if args else "")


@pytest.fixture(scope="session")
def batch(playbook: Callable) -> dict[str, Refusal]:
    """Run every case without a sentinel, WORKERS at a time, between two states of the host."""
    runs = [(case, args) for case, args in RUNS if not case.plant]
    before = host_state()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        done = list(pool.map(lambda run: playbook(run[0].playbook, *run[1], extra_vars=run[0].extra), runs))
    after = host_state()
    return {run_id(case, args): Refusal(result, before, after) for (case, args), result in zip(runs, done)}


def refuse_alone(case: Case, args: tuple[str, ...], playbook: Callable) -> Refusal:
    """Plant the case's sentinel, run it alone between two states of the host, clean up."""
    if case.plant:
        in_container(case.plant, user="dev")
    try:
        before = host_state()
        run = playbook(case.playbook, *args, extra_vars=case.extra)
        after = host_state()
        for sentinel in case.sentinels:
            in_container(f"test -e {sentinel} || test -L {sentinel}")
    finally:
        if case.cleanup:
            in_container(case.cleanup)
    return Refusal(run, before, after)


def failure_messages(output: str) -> str:
    """The messages of the failed tasks, from the json callback's output (and stderr's errors)."""
    messages: list[str] = []
    start = output.find("{")
    try:
        report, _end = json.JSONDecoder().raw_decode(output[start:]) if start >= 0 else ({}, 0)
    except ValueError:
        report = {}
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for result in task.get("hosts", {}).values():
                if result.get("failed") or result.get("unreachable"):
                    for one in [result, *result.get("results", [])]:
                        if one is result or one.get("failed"):
                            msg = one.get("msg", "")
                            messages.append(msg if isinstance(msg, str) else json.dumps(msg))
    messages += [line for line in output.splitlines() if line.startswith("ERROR")]
    return "\n".join(messages)


def test_the_table_covers_every_playbook_and_at_least_40_values():
    assert len(CASES) >= 40
    assert {case.playbook for case in CASES} == {REBUILD, BASE, TEARDOWN, PAPERSPACE, STARTUP, DOCTOR}


@pytest.mark.parametrize(("case", "args"), RUNS, ids=[run_id(case, args) for case, args in RUNS])
def test_a_bad_value_is_refused_before_anything_changes(case: Case, args: tuple[str, ...], batch: dict[str, Refusal],
                                                        playbook: Callable) -> None:
    refusal = refuse_alone(case, args, playbook) if case.plant else batch[run_id(case, args)]
    run = refusal.run
    messages = failure_messages(run.output)
    assert run.rc != 0, f"{case.id}: accepted (rc 0)\n{run.output[-3000:]}"
    assert case.variable in messages, f"{case.id}: the refusal does not name {case.variable}:\n{messages[-3000:]}"
    assert run.changed(HOST) == 0, f"{case.id}: {run.changed(HOST)} task(s) changed something"
    assert refusal.before == refusal.after, f"{case.id}: the host changed:\n" + "\n".join(
        difflib.unified_diff(refusal.before, refusal.after, "before", "after", lineterm="", n=0))


def test_the_converged_host_is_still_whole() -> None:
    """After all the refusals the prefix still works and the links are still in place."""
    in_container(f"{PREFIX}/bin/python -c 'import fastcore'", user="dev")
    in_container(f"test -L {HOME}/.ssh && test -d {HOME}/storage/.ssh", user="dev")



@pytest.mark.parametrize("keep", [0, -1])
def test_the_snapshot_just_taken_is_never_pruned(playbook: Callable, keep: int) -> None:
    """Called directly (no playbook's checks first), a keep count below 1 still spares the new snapshot."""
    snapshots = f"{HOME}/.local/state/reforge/snapshots"
    # 0 with older snapshots present; -1 as on a first rebuild, with none.
    older = "1 2" if keep == 0 else ""
    in_container(f"mkdir -p {snapshots} && rm -f {snapshots}/*.json"
                 f" && for n in {older}; do echo {{}} > {snapshots}/20200101T00000${{n}}Z.json; done", user="dev")
    run = playbook("molecule/validation/snapshot-keep.yml", extra_vars={"base_env_snapshot_keep": keep})
    assert run.rc == 0, run.output[-3000:]
    written = run.output.split("written=", 1)[1].split('"', 1)[0]
    assert written.startswith(f"{snapshots}/")
    in_container(f"test -s {written}")

def test_a_prefix_written_with_a_tilde_in_the_inventory_is_the_same_prefix(playbook: Callable, tmp_path) -> None:
    """~/miniforge3 from the inventory is expanded up front: --check on the converged host changes nothing."""
    inventory = tmp_path / "tilde.yml"
    inventory.write_text(f"all:\n  hosts:\n    {HOST}:\n      miniforge_prefix: ~/miniforge3\n")
    before = host_state()
    run = playbook(BASE, "-i", str(inventory), "--check")
    assert run.rc == 0, run.output[-3000:]
    assert run.changed(HOST) == 0
    assert host_state() == before


def test_teardown_removes_the_user_config_conda_made(playbook: Callable) -> None:
    """The positive control, last because it removes the prefix: a regular ~/.condarc and the
    ~/.conda conda writes are removed; the storage tree the ~/.conda link pointed into is kept."""
    in_container(f"mv {HOME}/.conda {HOME}/.conda.link && mkdir -p {HOME}/.conda/pkgs"
                 f" && echo {PREFIX} > {HOME}/.conda/environments.txt && test -f {HOME}/.condarc", user="dev")
    storage_before = in_container(f"find {HOME}/storage -printf '%p %y %s\\n' | LC_ALL=C sort")
    run = playbook(TEARDOWN, extra_vars=USER_CONFIG)
    assert run.rc == 0, run.output[-3000:]
    in_container(f"test ! -e {HOME}/.condarc && test ! -e {HOME}/.conda && test ! -e {PREFIX}")
    assert in_container(f"find {HOME}/storage -printf '%p %y %s\\n' | LC_ALL=C sort") == storage_before
