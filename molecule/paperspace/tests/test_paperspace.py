"""paperspace: the full converge, then what every start does, across a container restart.

The tests run in file order: the converged state (root on the notebook, dev on the
laptop), then a restart of the notebook (only /storage survives) with the startup
phase, check mode on the restarted hosts, pre-run.sh's guarantees in the container
(sourced safety, concurrency, migration), and last the secrets, so that every log
written by then is searched. Hosts are reached with testinfra's docker backend, one
`docker exec` per call, and multi-step probes are batched into one shell script.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import testinfra
from testinfra.host import Host

NOTEBOOK = "paperspace-notebook"
LAPTOP = "paperspace-laptop"
GITSERVER = "paperspace-gitserver"
DIRS = [".local", ".ssh", ".config", ".ipython", ".jupyter", ".fastai", ".kaggle", ".conda"]
FILES = [".gitconfig", ".git-credentials", ".bash_history"]
REPO = "gitserver:notes.git"
PRIVATE_KEY = "id_ed25519"


@dataclass(frozen=True)
class Machine:
    """Where one converged host keeps things."""

    name: str
    user: str
    home: str
    storage: str
    notebooks: str

    @property
    def checkout(self) -> str:
        return f"{self.storage}/git/notes"

    def host(self) -> Host:
        return testinfra.get_host(f"docker://{self.user}@{self.name}")


MACHINES = {
    "root-notebook": Machine(NOTEBOOK, "root", "/root", "/storage", "/notebooks"),
    "dev-laptop": Machine(LAPTOP, "dev", "/home/dev", "/home/dev/storage", "/home/dev/notebooks"),
}
ROOT = MACHINES["root-notebook"]
# Everything every playbook run in these tests printed, searched for the private key at the end.
OUTPUTS: list[str] = []


def ephemeral() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def controller_key() -> Path:
    return ephemeral() / "id_reforge_test"


def bash(host: Host, script: str, check: bool = True) -> tuple[int, str, str]:
    """Run a bash script on the host in one call; return rc, stdout, stderr."""
    result = host.run("bash -c %s", script)
    if check:
        assert result.rc == 0, f"script failed ({result.rc}):\n{script}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.rc, result.stdout, result.stderr


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    assert predicate(), f"timed out after {timeout:.0f} s waiting for {what}"


# What one script prints for every entry: kind of the home side, link target, kind and mode of the storage side.
ENTRY_STATE = r"""
for name in "$@"; do
  h=$HOME_DIR/$name s=$STORAGE_DIR/$name
  printf '%s\t%s\t%s\t%s\n' "$name" "$(stat -c %F "$h" 2>/dev/null)" "$(readlink "$h")" "$(stat -L -c '%F %a' "$s" 2>/dev/null)"
done
"""


def entry_states(host: Host, machine: Machine, names: list[str]) -> dict[str, tuple[str, str, str]]:
    script = f"HOME_DIR={machine.home} STORAGE_DIR={machine.storage}; set -- {' '.join(names)}\n{ENTRY_STATE}"
    _, out, _ = bash(host, script)
    rows = [line.split("\t") for line in out.splitlines()]
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def assert_linked(host: Host, machine: Machine) -> None:
    """Every entry is a link from home to storage, of the right kind; .ssh is 0700."""
    states = entry_states(host, machine, DIRS + FILES)
    for name in DIRS + FILES:
        kind, target, storage = states[name]
        assert kind == "symbolic link", f"{machine.home}/{name} is {kind!r}, not a link"
        assert target == f"{machine.storage}/{name}"
        expected = "directory" if name in DIRS else "regular"
        assert storage.startswith(expected), f"{machine.storage}/{name} is {storage!r}"
    assert states[".ssh"][2] == "directory 700"
    assert states[".git-credentials"][2].endswith(" 600")
    git_link = host.file(f"{machine.notebooks}/git")
    assert git_link.is_symlink and git_link.linked_to == f"{machine.storage}/git"


def assert_key_modes(host: Host, machine: Machine) -> None:
    ssh = f"{machine.storage}/.ssh"
    assert host.file(ssh).mode == 0o700
    assert host.file(f"{ssh}/{PRIVATE_KEY}").mode == 0o600
    assert host.file(f"{ssh}/{PRIVATE_KEY}.pub").mode == 0o644
    assert host.file(f"{ssh}/{PRIVATE_KEY}").user == machine.user


def git_ls_remote(host: Host) -> tuple[int, str, str]:
    """Authenticate for real: git over ssh with the user's own ~/.ssh (config alias, key, pinned known_hosts)."""
    return bash(host, f"GIT_SSH_COMMAND='ssh -o BatchMode=yes -o ConnectTimeout=20' git ls-remote {REPO} main", check=False)


def bare_repo_head(gitserver: Host) -> str:
    return gitserver.check_output("git --git-dir=/srv/git/notes.git rev-parse refs/heads/main")


def import_six_in_login_shell(host: Host) -> str:
    """The file `import six` loads, with plain python3, in a new login shell."""
    _, out, _ = bash(host, "bash -lc 'python3 -c \"import six; print(six.__file__)\"' </dev/null")
    return out.strip()


# -- the converged state ---------------------------------------------------------------------------


@pytest.fixture(params=list(MACHINES), ids=list(MACHINES))
def machine(request: pytest.FixtureRequest) -> Machine:
    return MACHINES[request.param]


def test_converge_links_every_entry_into_storage(machine: Machine) -> None:
    host = machine.host()
    assert host.user().name == machine.user
    assert_linked(host, machine)


def test_converge_deploys_the_controller_key_with_modes_config_and_pinned_host_key(machine: Machine) -> None:
    host = machine.host()
    assert_key_modes(host, machine)
    key = host.file(f"{machine.home}/.ssh/{PRIVATE_KEY}")
    assert key.sha256sum == hashlib.sha256(controller_key().read_bytes()).hexdigest()
    config = host.file(f"{machine.home}/.ssh/config").content_string
    assert re.search(r"^Host gitserver\n\s+HostName paperspace-gitserver\n\s+User git$", config, re.MULTILINE)
    pinned = (ephemeral() / "gitserver_known_hosts").read_text().strip()
    assert pinned.startswith("paperspace-gitserver ssh-ed25519 ")
    assert pinned in host.file(f"{machine.home}/.ssh/known_hosts").content_string.splitlines()


def test_converge_cloned_over_ssh_into_storage_git(machine: Machine) -> None:
    host = machine.host()
    gitserver = testinfra.get_host(f"docker://root@{GITSERVER}")
    _, out, _ = bash(host, f"git -C {machine.notebooks}/git/notes rev-parse HEAD; git -C {machine.checkout} remote get-url origin")
    head, origin = out.split()
    assert head == bare_repo_head(gitserver)
    assert origin == REPO
    assert host.file(f"{machine.checkout}/README.md").content_string.startswith("# notes")
    # The deployed key, config and pinned known_hosts authenticate for real.
    rc, out, err = git_ls_remote(host)
    assert rc == 0, err
    assert out.split() == [head, "refs/heads/main"]


def test_converge_pip_user_package_imports_with_plain_python3(machine: Machine) -> None:
    """On the notebook six was pip --user installed before the converge, while storage's .local already
    held other files: the converge merged the two (issue 9), nothing reinstalled it."""
    host = machine.host()
    location = import_six_in_login_shell(host)
    assert location == f"{machine.home}/.local/lib/python3.11/site-packages/six.py"
    assert host.file(f"{machine.storage}/.local/lib/python3.11/site-packages/six.py").is_file
    if machine is ROOT:
        assert host.file(f"{machine.storage}/.local/share/teammate/notes.txt").content_string == "already on storage\n"
        assert not host.file(f"{machine.storage}/.reforge/backup").exists or "six" not in host.check_output(
            f"find {machine.storage}/.reforge/backup")


def test_conda_packages_go_to_the_persistent_environment_or_are_skipped(machine: Machine) -> None:
    host = machine.host()
    env = f"{machine.storage}/conda-env"
    if machine is ROOT:
        # The notebook's image has conda in /opt/conda: the environment was created on /storage.
        assert host.run(f"{env}/bin/python -c 'import fastcore'").rc == 0
        assert host.file(f"{env}/conda-meta").is_directory
        assert "fastcore" in host.check_output(f"ls {env}/conda-meta")
    else:
        # No conda on the laptop: the role skipped the packages (its message is asserted in the check run).
        assert not host.file(env).exists


def test_laptop_pre_run_sourced_by_dev_keeps_everything_linked() -> None:
    laptop = MACHINES["dev-laptop"]
    host = laptop.host()
    log = f"{laptop.storage}/.reforge/pre-run.log"
    before = host.file(log).content_string if host.file(log).exists else ""
    _, out, _ = bash(host, f"set -euo pipefail; . {laptop.storage}/pre-run.sh; echo \"went on $-\"")
    assert re.search(r"^went on .*e.*u", out, re.MULTILINE)
    assert_linked(host, laptop)
    # Everything was linked already: the fast path returned without starting the engine (no log line).
    after = host.file(log).content_string if host.file(log).exists else ""
    assert after == before


# -- a restart of the notebook: only /storage survives ----------------------------------------------


@dataclass
class Restart:
    new_head: str
    refused: tuple[int, str, str]
    # Startup runs already in startup.log before the restart (a run still going is cut short by it).
    earlier_runs: int


PUSH_SECOND_COMMIT = r"""
set -euo pipefail
seed=$(mktemp -d)
git clone -q /srv/git/notes.git "$seed/notes"
cd "$seed/notes"
echo "${LINE:-pushed while the notebook was down}" >>README.md
git -c user.name='reforge test' -c user.email=test@reforge.invalid commit -q -am 'Another commit'
git push -q origin main
git rev-parse HEAD
rm -rf "$seed"
"""


@pytest.fixture(scope="module")
def restart(recreate: Callable[[str], None]) -> Restart:
    """Loosen the key, push a commit, re-create the notebook and wait for Jupyter."""
    host = ROOT.host()
    rc, _, err = git_ls_remote(host)
    assert rc == 0, f"control: the key at 0600 must authenticate: {err}"
    host.run_expect([0], f"chmod 0644 {ROOT.storage}/.ssh/{PRIVATE_KEY}")
    refused = git_ls_remote(host)
    # As the account that owns the bare repository, as any push over SSH would be.
    _, new_head, _ = bash(testinfra.get_host(f"docker://git@{GITSERVER}"), PUSH_SECOND_COMMIT)
    host.run_expect([0], "touch /root/not-persisted.txt")
    earlier_runs = len(startup_runs(host))

    recreate(NOTEBOOK)
    host = ROOT.host()
    wait_for(lambda: host.file("/run/jupyter-standin/started").exists, 60, "the Jupyter stand-in to start")
    return Restart(new_head=new_head.strip(), refused=refused, earlier_runs=earlier_runs)


def startup_runs(host: Host) -> list[str]:
    """The startup phase's runs in startup.log, each from its start line on."""
    log = host.file(f"{ROOT.storage}/.reforge/startup.log")
    if not log.exists:
        return []
    return re.split(r"^(?=\S+ pre-run\[\d+\]: startup phase: )", log.content_string, flags=re.MULTILINE)[1:]


@pytest.fixture(scope="module")
def startup_done(restart: Restart) -> str:
    """Wait for the background startup phase that the restart started; return its output."""
    host = ROOT.host()

    def finished() -> bool:
        runs = startup_runs(host)[restart.earlier_runs:]
        return bool(runs) and "PLAY RECAP" in runs[0]

    wait_for(finished, 300, "the startup phase started by the restart to finish")
    return startup_runs(host)[restart.earlier_runs]


def test_a_loose_private_key_is_refused_by_ssh(restart: Restart) -> None:
    rc, _, err = restart.refused
    assert rc != 0
    assert "UNPROTECTED PRIVATE KEY FILE" in err
    assert "Permissions 0644" in err
    assert re.search(r"Permission denied \(publickey", err), err


def test_restart_is_a_fresh_container_whose_pre_run_put_everything_back(restart: Restart) -> None:
    host = ROOT.host()
    assert not host.file("/root/not-persisted.txt").exists
    assert not host.file("/opt/conda").exists
    assert_linked(host, ROOT)
    assert host.file(f"{ROOT.notebooks}/git/notes/README.md").is_file


def test_restart_fixed_the_key_mode_before_jupyter_and_ssh_works_again(restart: Restart) -> None:
    host = ROOT.host()
    assert_key_modes(host, ROOT)
    log = host.file(f"{ROOT.storage}/.reforge/pre-run.log").content_string
    assert f"set mode 0600 on {ROOT.storage}/.ssh/{PRIVATE_KEY}" in log
    rc, _, err = git_ls_remote(host)
    assert rc == 0, err


def test_restart_keeps_pip_user_and_conda_environment(restart: Restart) -> None:
    host = ROOT.host()
    assert import_six_in_login_shell(host) == f"{ROOT.home}/.local/lib/python3.11/site-packages/six.py"
    # The conda environment on /storage outlives the image's conda; .bash.local puts it on PATH.
    _, out, _ = bash(host, "set -e; . /storage/.bash.local; declare -F pipi mambai >/dev/null; /storage/conda-env/bin/python -c 'import fastcore'; echo \"$PATH\"")
    assert out.strip().split(":")[0] == f"{ROOT.home}/.local/bin"
    assert out.strip().split(":")[-1] == "/storage/conda-env/bin"


def test_restart_started_jupyter_in_the_caller_state_run_sh_expects(restart: Restart) -> None:
    host = ROOT.host()
    started = host.file("/run/jupyter-standin/started").content_string
    assert "cwd=/notebooks" in started
    assert host.process.filter(comm="jupyter-standin")
    assert re.search(r"pre-run\[\d+\]: done in \d+ ms", host.file(f"{ROOT.storage}/.reforge/pre-run.log").content_string)


def assert_clean_startup_run(run: str) -> None:
    """A startup run that succeeded, without a warning, and skipped the links pre-run.sh had just made."""
    recap = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", run, re.MULTILINE)
    assert recap, run[-3000:]
    assert recap.group(2) == "0" and recap.group(3) == "0", run[-3000:]
    assert "WARNING" not in run.upper(), run[-5000:]
    assert "--skip-tags storage_links" in run.splitlines()[0]
    assert "Check the links from home" not in run


def test_startup_phase_fast_forwards_the_checkout_in_the_background(restart: Restart, startup_done: str) -> None:
    host = ROOT.host()
    assert_clean_startup_run(startup_done)
    assert host.check_output(f"git -C {ROOT.checkout} rev-parse HEAD") == restart.new_head
    assert "pushed while the notebook was down" in host.file(f"{ROOT.checkout}/README.md").content_string


def test_startup_playbook_as_dev_brings_the_laptop_up_to_date(restart: Restart, playbook: Callable[..., Any]) -> None:
    """The laptop missed the pushed commit (and ssh itself rewrote known_hosts): startup.yml catches up."""
    laptop = MACHINES["dev-laptop"]
    run = playbook("playbooks/startup.yml", "--limit", LAPTOP)
    OUTPUTS.append(run.output)
    assert run.rc == 0 and run.failed(LAPTOP) == 0, run.output[-5000:]
    host = laptop.host()
    assert host.check_output(f"git -C {laptop.checkout} rev-parse HEAD") == restart.new_head
    assert_linked(host, laptop)
    assert_key_modes(host, laptop)


def test_check_mode_on_the_converged_hosts_reports_no_change(startup_done: str, playbook: Callable[..., Any]) -> None:
    run = playbook("playbooks/paperspace.yml", "--check")
    OUTPUTS.append(run.output)
    assert run.rc == 0, run.output[-5000:]
    for name in (NOTEBOOK, LAPTOP):
        assert name in run.stats, run.output[-3000:]
        assert run.failed(name) == 0
        assert run.changed(name) == 0, f"{name} would change:\n{run.output[-5000:]}"
    # Neither host has conda now (the restart threw /opt/conda away): the role says so and goes on.
    assert run.output.count("Skipped prerun_conda_packages fastcore: no conda on this host") == 2


RECORDING_PIP = r"""
set -euo pipefail
venv=/storage/.reforge/venv
rm -f /tmp/pip-was-run
mv "$venv/bin/pip" "$venv/bin/pip.real"
printf '#!/bin/sh\ntouch /tmp/pip-was-run\nexec "$0.real" "$@"\n' >"$venv/bin/pip"
chmod 0755 "$venv/bin/pip"
"""


def test_a_converged_startup_venv_is_not_asked_again(startup_done: str, playbook: Callable[..., Any]) -> None:
    """The venv's packages and python are as requested and stamped: the converge does not run pip."""
    host = ROOT.host()
    bash(host, RECORDING_PIP)
    try:
        run = playbook("playbooks/paperspace.yml", "--check", "--limit", NOTEBOOK)
        OUTPUTS.append(run.output)
        assert run.rc == 0 and run.changed(NOTEBOOK) == 0, run.output[-5000:]
        assert not host.file("/tmp/pip-was-run").exists
    finally:
        bash(host, "venv=/storage/.reforge/venv; mv -f \"$venv/bin/pip.real\" \"$venv/bin/pip\"")


def startup_stamp(host: Host) -> str:
    stamp = host.file(f"{ROOT.storage}/.reforge/startup.stamp")
    return stamp.content_string if stamp.exists else ""


def test_a_start_with_nothing_changed_runs_neither_the_engine_nor_ansible(startup_done: str) -> None:
    host = ROOT.host()
    # The stamp is written right after the run that startup_done saw end.
    wait_for(lambda: bool(startup_stamp(host)), 60, "the startup stamp")
    runs_before = len(startup_runs(host))
    log_before = host.file(f"{ROOT.storage}/.reforge/pre-run.log").content_string
    _, out, _ = bash(host, "set -euo pipefail; . /storage/pre-run.sh; echo went on")
    assert out.strip() == "went on"
    # The engine writes a line at every run: it was not started, nor was any playbook.
    assert host.file(f"{ROOT.storage}/.reforge/pre-run.log").content_string == log_before
    assert len(startup_runs(host)) == runs_before


def test_a_change_of_the_project_copy_fast_forwards_a_new_push_at_the_next_start(startup_done: str) -> None:
    host = ROOT.host()
    wait_for(lambda: bool(startup_stamp(host)), 60, "the startup stamp")
    stamp = startup_stamp(host)
    _, new_head, _ = bash(testinfra.get_host(f"docker://git@{GITSERVER}"),
                          "export LINE='pushed after the restart'\n" + PUSH_SECOND_COMMIT)
    runs_before = len(startup_runs(host))
    # The user edits their settings in the copy (touch stands in for an edit).
    host.run_expect([0], "touch /storage/reforge/inventory/host_vars/localhost.yml")
    bash(host, "set -euo pipefail; . /storage/pre-run.sh")

    def finished() -> bool:
        runs = startup_runs(host)[runs_before:]
        return bool(runs) and "PLAY RECAP" in runs[0] and startup_stamp(host) != stamp

    wait_for(finished, 300, "the startup phase started by the change to finish")
    runs = startup_runs(host)[runs_before:]
    assert len(runs) == 1
    assert_clean_startup_run(runs[0])
    assert host.check_output(f"git -C {ROOT.checkout} rev-parse HEAD") == new_head.strip()
    # And the next start, with nothing changed, runs nothing again.
    bash(host, "set -euo pipefail; . /storage/pre-run.sh")
    assert len(startup_runs(host)) == runs_before + 1


# -- pre-run.sh's guarantees, in the container ------------------------------------------------------

# A caller like /run.sh, but strict: if sourcing pre-run.sh broke anything, it would not reach the end.
CALLER = r"""
set -euo pipefail
cd "$scratch"
before="$- $(pwd) $(umask)"
. /storage/pre-run.sh
after="$- $(pwd) $(umask)"
[ "$before" = "$after" ] || { echo "caller state changed: $before -> $after"; exit 1; }
echo "caller went on with $after"
"""

SUMS = r"""
# The sorted sha256 of every file holding data (regular, not empty) under the given trees,
# links not followed, .reforge (logs, locks) left out.
sums() {
  for tree in "$@"; do
    [ -e "$tree" ] || continue
    find -P "$tree" -path '*/.reforge' -prune -o -type f -size +0 -print0 | xargs -0 -r sha256sum | awk '{print $1}'
  done | sort
}
"""

SAFETY_SCRIPT = r"""
export scratch=$(mktemp -d)
export REFORGE_HOME_DIR=$scratch/home REFORGE_NOTEBOOKS_DIR=$scratch/notebooks
mkdir -p "$REFORGE_HOME_DIR" "$REFORGE_NOTEBOOKS_DIR"
@CASE@
@SUMS@
sums "$REFORGE_HOME_DIR/" "$REFORGE_STORAGE_DIR/" >"$scratch/before"
cat >"$scratch/caller.sh" <<'CALLER_EOF'
@CALLER@
CALLER_EOF
bash "$scratch/caller.sh" 2>"$scratch/stderr"
echo "stderr: $(tr '\n' ' ' <"$scratch/stderr")"
sums "$REFORGE_HOME_DIR/" "$REFORGE_STORAGE_DIR/" >"$scratch/after"
if cmp -s "$scratch/before" "$scratch/after"; then echo "data kept"; else echo "DATA CHANGED"; diff "$scratch/before" "$scratch/after"; fi
for name in .config .kaggle; do echo "$name -> $(readlink "$REFORGE_HOME_DIR/$name")"; done
echo "storage .ipython -> $(readlink "$REFORGE_STORAGE_DIR/.ipython")"
sed 's/^/log: /' "$REFORGE_STORAGE_DIR/.reforge/pre-run.log" 2>/dev/null || true
rm -rf "$scratch"
"""

SAFETY_CASES = {
    "storage-missing": r"""
export REFORGE_STORAGE_DIR=$scratch/missing
mkdir -p "$REFORGE_HOME_DIR/.config/app" && echo 'home data' >"$REFORGE_HOME_DIR/.config/app/settings"
""",
    "storage-read-only": r"""
export REFORGE_STORAGE_DIR=/datasets
mkdir -p "$REFORGE_HOME_DIR/.config/app" && echo 'home data' >"$REFORGE_HOME_DIR/.config/app/settings"
echo '[user] name = home' >"$REFORGE_HOME_DIR/.gitconfig"
""",
    "broken-links": r"""
export REFORGE_STORAGE_DIR=$scratch/storage
mkdir -p "$REFORGE_STORAGE_DIR/.config/app" && echo 'storage data' >"$REFORGE_STORAGE_DIR/.config/app/settings"
ln -s "$scratch/gone/.config" "$REFORGE_HOME_DIR/.config"
ln -s "$scratch/gone/.kaggle" "$REFORGE_HOME_DIR/.kaggle"
ln -s "$scratch/gone/.ipython" "$REFORGE_STORAGE_DIR/.ipython"
""",
}


@pytest.mark.parametrize("case", list(SAFETY_CASES), ids=[f"{i + 1}of{len(SAFETY_CASES)}-{c}" for i, c in enumerate(SAFETY_CASES)])
def test_pre_run_sourced_by_a_strict_caller_always_lets_it_go_on(case: str, startup_done: str) -> None:
    host = ROOT.host()
    script = SAFETY_SCRIPT.replace("@CASE@", SAFETY_CASES[case]).replace("@CALLER@", CALLER).replace("@SUMS@", SUMS)
    _, out, _ = bash(host, script)
    assert "caller went on with " in out, out
    assert "data kept" in out, out
    if case == "storage-missing":
        assert "/missing is missing; nothing was linked" in out
    elif case == "storage-read-only":
        assert "cannot write /datasets/.reforge/pre-run.log (read-only storage?)" in out
        assert "could not move" in out
        assert ".config -> \n" in out, "a home entry must stay in place when storage is read-only"
    else:
        assert re.search(r"^\.config -> /tmp/\S+/storage/\.config$", out, re.MULTILINE), out
        assert re.search(r"^\.kaggle -> /tmp/\S+/storage/\.kaggle$", out, re.MULTILINE), out
        assert re.search(r"storage \.ipython -> /tmp/\S+/gone/\.ipython$", out, re.MULTILINE), out
        assert re.search(r"log: .*\S+/\.ipython: \S+/storage/\.ipython on the storage side is a symbolic link", out), out


CONCURRENT = r"""
scratch=$(mktemp -d)
export REFORGE_HOME_DIR=$scratch/home REFORGE_STORAGE_DIR=$scratch/storage REFORGE_NOTEBOOKS_DIR=$scratch/notebooks
mkdir -p "$REFORGE_STORAGE_DIR" "$REFORGE_NOTEBOOKS_DIR/git"
for name in .local/lib/python3.11/site-packages/pkg .config/app .ipython/profile_default .jupyter .ssh; do
  mkdir -p "$REFORGE_HOME_DIR/$name"
  for i in 1 2 3 4 5 6 7 8; do echo "$name $i $RANDOM" >"$REFORGE_HOME_DIR/$name/file$i"; done
done
echo '[user] name = home' >"$REFORGE_HOME_DIR/.gitconfig"
echo 'history' >"$REFORGE_HOME_DIR/.bash_history"
echo 'notebook' >"$REFORGE_NOTEBOOKS_DIR/git/README"
""" + SUMS + r"""
sums "$REFORGE_HOME_DIR/" "$REFORGE_NOTEBOOKS_DIR/git/" >"$scratch/before"
bash -c '. /storage/pre-run.sh' & bash -c '. /storage/pre-run.sh' & wait
sums "$REFORGE_STORAGE_DIR/" >"$scratch/after"
cmp -s "$scratch/before" "$scratch/after" && echo "every file once in storage" || { echo "MISMATCH"; diff "$scratch/before" "$scratch/after"; }
echo "backups: $(find "$REFORGE_STORAGE_DIR/.reforge/backup" -type f 2>/dev/null | wc -l)"
echo "partials: $(find "$REFORGE_STORAGE_DIR" -name '*.reforge-partial' | wc -l)"
for name in .local .ssh .config .ipython .jupyter .fastai .kaggle .conda .gitconfig .git-credentials .bash_history; do
  echo "link $name -> $(readlink "$REFORGE_HOME_DIR/$name")"
done
echo "link git -> $(readlink "$REFORGE_NOTEBOOKS_DIR/git")"
echo "runs: $(grep -c 'done in' "$REFORGE_STORAGE_DIR/.reforge/pre-run.log")"
echo "ssh mode: $(stat -c %a "$REFORGE_STORAGE_DIR/.ssh") $(stat -c %a "$REFORGE_STORAGE_DIR/.ssh/file1")"
rm -rf "$scratch"
"""


@pytest.mark.parametrize("lock", ["flock", "mkdir"])
def test_two_concurrent_starts_end_consistent(lock: str, startup_done: str) -> None:
    host = ROOT.host()
    prefix = "export REFORGE_PRERUN_NO_FLOCK=1\n" if lock == "mkdir" else ""
    _, out, _ = bash(host, prefix + CONCURRENT)
    assert "every file once in storage" in out, out
    assert "backups: 0" in out, out
    assert "partials: 0" in out, out
    links = dict(re.findall(r"^link (\S+) -> (\S*)$", out, re.MULTILINE))
    assert len(links) == len(DIRS + FILES) + 1
    for name, target in links.items():
        expected = "/storage/git" if name == "git" else f"/storage/{name}"
        assert target.endswith(expected), out
    assert "runs: 2" in out, out
    assert "ssh mode: 700 600" in out, out


MIGRATION = r"""
set -euo pipefail
# Storage holds content for .config and .gitconfig; home has real, different copies (as an image could).
mkdir -p /storage/.config/app && echo 'storage wins' >/storage/.config/app/settings
printf '[user]\n\tname = storage\n' >/storage/.gitconfig
rm /root/.config /root/.gitconfig /root/.kaggle
mkdir -p /root/.config/app /root/.kaggle
echo 'home copy' >/root/.config/app/settings
echo 'only at home' >/root/.config/notes.txt
printf '[user]\n\tname = home\n' >/root/.gitconfig
# Storage's .kaggle is empty: the home copy moves into it.
echo '{"username": "me"}' >/root/.kaggle/kaggle.json
""" + SUMS + r"""
sums /root/.config/ /root/.gitconfig /root/.kaggle/ /storage/.config/ /storage/.gitconfig /storage/.kaggle/ >/tmp/before
bash -c '. /storage/pre-run.sh'
sums /storage/.config/ /storage/.gitconfig /storage/.kaggle/ /storage/.reforge/backup/ >/tmp/after
missing=$(comm -23 /tmp/before /tmp/after | wc -l)
echo "files before: $(wc -l </tmp/before), missing after: $missing"
for name in .config .gitconfig .kaggle; do echo "link $name -> $(readlink /root/$name)"; done
echo "storage settings: $(cat /storage/.config/app/settings)"
echo "storage notes: $(cat /storage/.config/notes.txt)"
echo "storage kaggle: $(cat /storage/.kaggle/kaggle.json)"
find /storage/.reforge/backup -type f | sort | sed 's/^/backup: /'
for f in $(find /storage/.reforge/backup -type f -path '*/root/.config/app/settings'); do echo "backed up settings: $(cat "$f")"; done
"""


def test_migration_backs_up_colliding_home_content_under_storage(startup_done: str) -> None:
    host = ROOT.host()
    _, out, _ = bash(host, MIGRATION)
    files = re.search(r"^files before: (\d+), missing after: (\d+)$", out, re.MULTILINE)
    assert files and int(files.group(1)) >= 6 and files.group(2) == "0", out
    for name in (".config", ".gitconfig", ".kaggle"):
        assert f"link {name} -> /storage/{name}" in out, out
    assert "storage settings: storage wins" in out
    assert 'storage kaggle: {"username": "me"}' in out
    # Merged, not replaced: what storage lacked moved in; only the colliding file went to the backup.
    assert "storage notes: only at home" in out
    assert not re.search(r"^backup: .*/notes\.txt$", out, re.MULTILINE), out
    assert re.search(r"^backup: /storage/\.reforge/backup/\d{8}T\d{6}Z/root/\.config/app/settings$", out, re.MULTILINE), out
    assert re.search(r"^backup: /storage/\.reforge/backup/\d{8}T\d{6}Z/root/\.gitconfig$", out, re.MULTILINE), out
    assert "backed up settings: home copy" in out
    assert host.file("/storage/.reforge/backup").mode == 0o700


# -- secrets: last, so every log written above is searched -------------------------------------------


def key_lines() -> list[str]:
    lines = controller_key().read_text().splitlines()
    body = [line.strip() for line in lines if line.strip() and not line.startswith("-----")]
    assert body, "the test key has no body to look for"
    return body


def hits(text: str, secrets: list[str]) -> int:
    return sum(text.count(line) for line in secrets)


def container_logs(machine: Machine) -> Iterator[tuple[str, str]]:
    """Every log under the storage's .reforge folder (pre-run, startup, rotated ones, backups excluded)."""
    host = machine.host()
    _, out, _ = bash(host, f"find {machine.storage}/.reforge -path {machine.storage}/.reforge/venv -prune -o -type f -name '*.log*' -print")
    for path in out.split():
        yield f"{machine.name}:{path}", host.file(path).content_string


def test_no_line_of_the_private_key_in_any_log_or_output(startup_done: str) -> None:
    secrets = key_lines()
    # Control: the same search finds the key where it is, read the same way.
    assert hits(ROOT.host().file(f"{ROOT.storage}/.ssh/{PRIVATE_KEY}").content_string, secrets) == len(secrets)

    searched: dict[str, str] = {}
    for machine in MACHINES.values():
        searched.update(container_logs(machine))
    assert any(name.endswith("/pre-run.log") for name in searched)
    assert any(name.endswith("/startup.log") for name in searched)
    # Molecule's own files: its ansible.log holds the output of every playbook run (create to verify).
    assert (ephemeral() / "ansible.log").stat().st_size > 0
    for path in ephemeral().rglob("*"):
        if path.is_file() and not path.name.startswith("id_reforge_test") and not path.name.endswith(".tar.gz"):
            searched[str(path)] = path.read_text(errors="replace")
    for index, output in enumerate(OUTPUTS):
        searched[f"playbook output {index}"] = output
    assert OUTPUTS, "the check run's output must be searched too"

    leaked = {name: hits(text, secrets) for name, text in searched.items() if hits(text, secrets)}
    assert leaked == {}, f"private key lines found in: {sorted(leaked)}"
    assert len(searched) >= 5, json.dumps(sorted(searched))

