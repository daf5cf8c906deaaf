"""The ssh_keys role against temporary homes and a real sshd: key sources, modes, config, known_hosts, check mode, secrecy.

Every test reads the session's scenario (see scenario.py): the runs happen once, and
the tests assert on the files, modes and ssh results recorded between them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scenario import CONVERGED_CHECK_HOSTS, GITHUB_GREETING, REPAIR_HOSTS, RERUN_HOSTS, USER_CONFIG, Scenario
from sshlab import SSH_ALIAS, assert_no_private_key, digest, run

GITHUB_FINGERPRINTS = {
    # Published by GitHub ("GitHub's SSH key fingerprints"); the role's pinned keys must hash to these.
    "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
    "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
    "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
}
CONVERGED_HOSTS = ("file_linked", "vars_source", "generate_new", "generate_existing", "none_source")


def file_state(scenario: Scenario, stage: str, host: str, name: str) -> tuple[str, str]:
    """(mode, sha256) of a file in the host's .ssh as recorded after the stage."""
    recorded = scenario.states[stage][host].get(f".ssh/{name}")
    assert recorded is not None, f"{host}: .ssh/{name} is missing after {stage}: {scenario.states[stage][host]}"
    file_mode, file_digest = recorded.split()
    return file_mode, file_digest


def authenticated(output: str, key: Path) -> bool:
    """Whether the check reported a successful authentication with this key (the message names the key's path)."""
    return f"Authenticated to {SSH_ALIAS} with {key}." in output


def test_every_home_converges_then_reports_no_change_on_later_runs_and_in_check_mode(scenario: Scenario) -> None:
    converge, rerun, check, repair = (scenario.runs[stage] for stage in ("converge", "rerun", "check", "repair"))
    assert converge.returncode == 0, str(converge)
    assert rerun.returncode == 0, str(rerun)
    assert check.returncode == 0, str(check)
    for name in CONVERGED_HOSTS:
        assert converge.host(name).failed == 0 and converge.host(name).changed > 0, f"{name}: {converge.host(name)}"
    for name in RERUN_HOSTS:
        assert rerun.host(name).failed == 0 and rerun.host(name).changed == 0, f"{name}: {rerun.host(name)}"
        assert scenario.states["rerun"][name] == scenario.states["converge"][name], f"{name} changed on the rerun"
    for name in CONVERGED_CHECK_HOSTS:
        assert check.host(name).failed == 0 and check.host(name).changed == 0, f"{name}: {check.host(name)}"
        assert scenario.states["check"][name] == scenario.states["converge"][name], f"{name} changed in check mode"
    # The repair run is generate_existing's second run; only its final check fails (see the check tag's test).
    assert repair.host("generate_existing").changed == 0, str(repair)
    assert scenario.states["repair"]["generate_existing"] == scenario.states["converge"]["generate_existing"]


def test_check_mode_on_a_new_home_reports_changes_and_writes_nothing(scenario: Scenario) -> None:
    check = scenario.runs["check"]
    fresh = scenario.lab.hosts["file_fresh"]

    assert check.host("file_fresh").failed == 0 and check.host("file_fresh").changed > 0, str(check)
    assert scenario.states["before_check"]["file_fresh"] == {}
    assert scenario.states["check"]["file_fresh"] == {}
    assert not (fresh.root / "storage").exists(), "check mode must not create the checkout directory or clone"


def test_file_source_into_a_linked_ssh_dir_gives_modes_config_known_hosts_and_a_working_login(scenario: Scenario) -> None:
    host = scenario.lab.hosts["file_linked"]
    state = scenario.states["converge"]["file_linked"]
    storage_ssh = host.root / "storage" / ".ssh"

    assert state[".ssh -> "] == str(storage_ssh), "the .ssh symlink into storage is kept"
    assert state[".ssh/"] == "0700", "the link's target gets the mode"
    assert file_state(scenario, "converge", "file_linked", "id_ed25519") == ("0600", digest(host.controller_key))
    assert file_state(scenario, "converge", "file_linked", "id_ed25519.pub") == ("0644", digest(host.controller_public_key))
    assert file_state(scenario, "converge", "file_linked", "config")[0] == "0600"
    assert file_state(scenario, "converge", "file_linked", "known_hosts")[0] == "0644"

    config = scenario.notes["config_after_converge"]
    assert config.startswith("# BEGIN reforge ssh_keys: hosts\n"), config
    assert config.endswith(USER_CONFIG), "the user's own entries are kept after the managed block"
    entry = config.split(f"Host {SSH_ALIAS}\n", 1)[1].split("Host ", 1)[0]
    assert "HostName 127.0.0.1" in entry
    assert f"Port {scenario.lab.sshd.port}" in entry
    assert f"User {scenario.lab.sshd.user}" in entry
    assert f'IdentityFile "{host.ssh_dir / "id_ed25519"}"' in entry
    assert "IdentitiesOnly yes" in entry

    fingerprints = scenario.notes["known_hosts_fingerprints"]
    assert {line.split()[1] for line in fingerprints.splitlines() if " github.com " in line} == GITHUB_FINGERPRINTS
    assert scenario.lab.sshd.host_key_line in scenario.notes["known_hosts_server_entry"]

    login = scenario.logins["file_linked converged"]
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "reforge-login-ok"


def test_vars_source_writes_the_key_with_its_final_newline_and_a_working_login(scenario: Scenario) -> None:
    host = scenario.lab.hosts["vars_source"]

    # The variable had no final newline; the key on disk is byte for byte the original file.
    assert file_state(scenario, "converge", "vars_source", "id_ed25519") == ("0600", digest(host.controller_key))
    assert file_state(scenario, "converge", "vars_source", "id_ed25519.pub") == ("0644", digest(host.controller_public_key))
    assert scenario.states["converge"]["vars_source"][".ssh/"] == "0700"
    login = scenario.logins["vars_source converged"]
    assert login.returncode == 0 and login.stdout.strip() == "reforge-login-ok", login.stderr


def test_generate_source_creates_a_key_once_and_prints_its_public_half(scenario: Scenario) -> None:
    host = scenario.lab.hosts["generate_new"]
    key_mode, key_digest = file_state(scenario, "converge", "generate_new", "id_ed25519")
    public = host.ssh_dir / "id_ed25519.pub"

    assert key_mode == "0600"
    assert file_state(scenario, "converge", "generate_new", "id_ed25519.pub")[0] == "0644"
    assert run(["ssh-keygen", "-l", "-f", str(host.key)]).stdout.rstrip().endswith("(ED25519)")
    assert public.read_text(encoding="utf-8").strip() in scenario.runs["converge"].output, "the public key is shown to add to GitHub"
    for stage in ("rerun", "check"):
        assert file_state(scenario, stage, "generate_new", "id_ed25519") == ("0600", key_digest), f"the key changed in {stage}"
    assert digest(host.key) == key_digest, "an existing key is never regenerated"


def test_generate_source_derives_a_missing_public_key_and_keeps_the_private_one(scenario: Scenario) -> None:
    host = scenario.lab.hosts["generate_existing"]

    assert scenario.states["new"]["generate_existing"][".ssh/id_ed25519"].startswith("0640 ")
    assert ".ssh/id_ed25519.pub" not in scenario.states["new"]["generate_existing"]
    assert file_state(scenario, "converge", "generate_existing", "id_ed25519") == ("0600", digest(host.controller_key))
    derived = (host.ssh_dir / "id_ed25519.pub").read_text(encoding="utf-8").split()[:2]
    assert derived == host.controller_public_key.read_text(encoding="utf-8").split()[:2]
    assert file_state(scenario, "converge", "generate_existing", "id_ed25519.pub") == ("0644", digest(host.ssh_dir / "id_ed25519.pub"))


def test_none_source_keeps_the_key_that_is_there_and_fixes_its_modes(scenario: Scenario) -> None:
    host = scenario.lab.hosts["none_source"]
    before = scenario.states["new"]["none_source"]

    assert (before[".ssh/"], before[".ssh/id_ed25519"][:4], before[".ssh/id_ed25519.pub"][:4]) == ("0755", "0644", "0600")
    # One ssh_dir task sets the directory's and both key files' modes, and reports the change.
    assert scenario.runs["converge"].host("none_source").changed >= 1, "the mode changes were not reported"
    assert scenario.states["converge"]["none_source"][".ssh/"] == "0700"
    assert file_state(scenario, "converge", "none_source", "id_ed25519") == ("0600", digest(host.controller_key))
    assert file_state(scenario, "converge", "none_source", "id_ed25519.pub") == ("0644", digest(host.controller_public_key))
    login = scenario.logins["none_source converged"]
    assert login.returncode == 0 and login.stdout.strip() == "reforge-login-ok", login.stderr


def test_unprotected_private_key_is_refused_by_ssh_and_fixed_by_the_next_run(scenario: Scenario) -> None:
    host = scenario.lab.hosts["file_linked"]
    _, key_digest = file_state(scenario, "converge", "file_linked", "id_ed25519")

    assert file_state(scenario, "changed", "file_linked", "id_ed25519") == ("0644", key_digest)
    refused = scenario.logins["file_linked loose key"]
    assert refused.returncode == 255
    assert "UNPROTECTED PRIVATE KEY FILE" in refused.stderr

    repair = scenario.runs["repair"]
    assert repair.host("file_linked").failed == 0, str(repair)
    assert file_state(scenario, "repair", "file_linked", "id_ed25519") == ("0600", key_digest)
    accepted = scenario.logins["file_linked repaired"]
    assert accepted.returncode == 0, accepted.stderr
    assert authenticated(repair.output, host.key), "the check tag ran after the mode was fixed"


def test_the_check_tag_passes_for_known_keys_and_a_github_style_answer_and_fails_for_an_unknown_key(scenario: Scenario) -> None:
    rerun, repair = scenario.runs["rerun"], scenario.runs["repair"]
    hosts = scenario.lab.hosts

    # The generated key was refused until the server learned it; then the server answered like GitHub.
    assert scenario.logins["generate_new converged"].returncode == 255
    greeting = scenario.logins["generate_new greeting"]
    assert greeting.returncode == 1 and GITHUB_GREETING in greeting.stderr
    for name in RERUN_HOSTS:
        assert authenticated(rerun.output, hosts[name].key), f"{name} did not authenticate:\n{rerun}"

    assert repair.returncode != 0, "a host whose check fails fails the run"
    assert repair.host("generate_existing").failed == 1, str(repair)
    assert re.search(r"fatal: \[generate_existing\].*Permission denied \(publickey\)", repair.output), repair.output
    assert not authenticated(repair.output, hosts["generate_existing"].key)
    assert set(repair.stats) == set(REPAIR_HOSTS)


def test_no_private_key_appears_in_any_output(scenario: Scenario) -> None:
    outputs = [result.output for result in scenario.lab.runs]
    assert len(outputs) == 4
    assert any("-vvv" in result.args for result in scenario.lab.runs)
    for name, host in scenario.lab.hosts.items():
        assert_no_private_key(outputs, host.key if name == "generate_new" else host.controller_key)


def test_the_secret_search_finds_a_key_printed_the_way_ansible_prints_values(tmp_path: Path) -> None:
    """Control for the secrecy assertions: a key shown as Ansible shows a string (JSON, escaped newlines) is found."""
    key = tmp_path / "id_test"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "control", "-f", str(key)])
    secret = key.read_text(encoding="utf-8")
    leaked = 'ok: [localhost] => {"changed": false, "content": ' + json.dumps(secret) + "}"

    with pytest.raises(AssertionError, match="a line of the private key appears"):
        assert_no_private_key(["clean output", leaked], key)
    assert_no_private_key(["clean output"], key)


# R11 (review appendix): ~/.ssh -> /storage/.ssh -> elsewhere. Needs no sshd, so it runs on its own.
def test_r11_a_storage_ssh_link_to_etc_is_refused_and_nothing_is_chmodded_or_written(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from ansible_collections.reforge.workstation.tests.unit.treedata import snapshot

    repo = Path(__file__).resolve().parents[3]
    etc, home, storage = tmp_path / "etc", tmp_path / "home", tmp_path / "storage"
    for folder in (etc, home, storage):
        folder.mkdir()
    etc.chmod(0o755)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")
    (etc / "passwd").chmod(0o644)
    (storage / ".ssh").symlink_to(etc)
    (home / ".ssh").symlink_to(storage / ".ssh")
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        f"  vars: {{ansible_facts: {{user_dir: '{home}', user_id: root}}}}\n"
        "  roles: [{role: ssh_keys, ssh_keys_source: none}]\n"
    )
    before = snapshot(etc)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(play),
         "-e", "ansible_python_interpreter=" + sys.executable],
        cwd=repo, capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(repo / "ansible.cfg")},
    )
    assert oct(etc.stat().st_mode & 0o777) == oct(0o755)
    assert snapshot(etc) == before, "the role chmodded or wrote through the link"
    assert done.returncode != 0 and "is not a real directory" in done.stdout, done.stdout[-2000:]
