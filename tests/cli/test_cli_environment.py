"""The environment `reforge` gives ansible-playbook, and what its run records keep (R9, R12).

Real runs of a throw-away project: host-key checking as ansible.cfg says (and on by
default) against a real sshd on 127.0.0.1, the environment from an allow-list, extra
vars through a private file that is gone afterwards, and run records that hold no
secret and no environment dump, kept where no link into storage leads.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.ssh.sshlab import Sshd, running_sshd

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 180

HF_TOKEN = "hf_FromTheEnvironment-8c1d"
PRIVATE_KEY = "PRIVATEKEYTEXT-2b7e"
GITHUB_PAT = "ghp_PersonalAccess-93aa"
PASSPHRASE = "horse-battery-staple-5f1c"
CREDENTIAL = "CredentialFromJson-71e0"
SPEC_SECRET = "DeployMaterial-a0b9"
FILE_PASSWORD = "PasswordFromFile-44d2"
SECRETS = (HF_TOKEN, PRIVATE_KEY, GITHUB_PAT, PASSPHRASE, CREDENTIAL, SPEC_SECRET, FILE_PASSWORD)

# doctor: report what the play sees, then fail with secrets in the message.
DOCTOR = """\
- name: Doctor
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Report the settings the run got
      ansible.builtin.copy:
        dest: "{{ out_dir }}/report.json"
        mode: "0600"
        content: "{{ report | to_json }}"
      vars:
        report:
          host_key_checking: "{{ lookup('ansible.builtin.config', 'HOST_KEY_CHECKING') }}"
          hf_token_seen: "{{ lookup('ansible.builtin.env', 'HF_TOKEN') | length > 0 }}"
          lang: "{{ lookup('ansible.builtin.env', 'LANG') }}"
          count: "{{ count | default('') }}"
          count_type: "{{ count | default('') | type_debug }}"
          nested: "{{ nested | default({}) }}"
          order: "{{ order | default('') }}"
          key_seen: "{{ ssh_keys_private_key | default('') == private_key_expected | default('x') }}"
    - name: Fail with the secrets
      ansible.builtin.fail:
        msg: "{{ ssh_keys_private_key | default('') }} {{ github_pat | default('') }} {{ vault_passphrase | default('') }}"
      when: fail_with_secrets | default(false) | bool
"""

# paperspace: reach a host over SSH.
PAPERSPACE = """\
- name: Paperspace
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping the machine
      ansible.builtin.ping:
"""

ARGUMENT_SPECS = """\
---
argument_specs:
  main:
    options:
      team_deploy_material:
        type: str
        no_log: true
        description: Marked secret in the spec, though no pattern matches its name.
      team_region:
        type: str
        description: Not secret.
"""


def make_project(root: Path, cfg: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "ansible.cfg").write_text(f"[defaults]\nretry_files_enabled = false\n{cfg}")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "doctor.yml").write_text(DOCTOR)
    (root / "playbooks" / "paperspace.yml").write_text(PAPERSPACE)
    (root / "roles" / "team" / "meta").mkdir(parents=True)
    (root / "roles" / "team" / "meta" / "argument_specs.yml").write_text(ARGUMENT_SPECS)
    return root


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "REFORGE_"))}
    clean["XDG_STATE_HOME"] = str(tmp_path / "state")
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO / "src"), clean.get("PYTHONPATH"))))
    clean["HF_TOKEN"] = HF_TOKEN
    clean["LANG"] = "C.UTF-8"
    clean["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    return clean


def reforge(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reforge", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)


def report(out_dir: Path) -> dict[str, object]:
    return json.loads((out_dir / "report.json").read_text())


def every_file(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


# Host keys ---------------------------------------------------------------------------
@pytest.mark.parametrize(("cfg", "expected"), [
    ("", True), ("host_key_checking = True\n", True), ("host_key_checking = False\n", False)])
def test_host_key_checking_follows_ansible_cfg_and_is_on_by_default(tmp_path, env, cfg, expected):
    project = make_project(tmp_path / "proj", cfg)
    result = reforge(["doctor", "--project", str(project), "-i", "localhost,", "-e", f"out_dir={tmp_path}"],
                     env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report(tmp_path)["host_key_checking"] is expected


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def test_an_unknown_host_key_is_refused_against_a_real_sshd(tmp_path, env, sshd):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True)
    sshd.authorize(Path(f"{key}.pub"))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"vm": {
        "ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": sshd.user,
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null",
        "ansible_python_interpreter": sys.executable}}}}))
    project = make_project(tmp_path / "proj")

    refused = reforge(["paperspace", "--project", str(project), "-i", str(inventory), "--json"], env, tmp_path)
    assert refused.returncode != 0, refused.stdout
    assert json.loads(refused.stdout)["hosts"]["vm"]["unreachable"] == 1, refused.stdout
    assert known_hosts.read_text() == "", "the unknown key must not be learnt either"

    known_hosts.write_text(sshd.known_hosts_line() + "\n")
    accepted = reforge(["paperspace", "--project", str(project), "-i", str(inventory), "--json"], env, tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


# The environment and the records ---------------------------------------------------------
def test_the_run_gets_an_allow_listed_environment_and_extra_vars_with_their_types(tmp_path, env):
    project = make_project(tmp_path / "proj")
    (tmp_path / "more.yml").write_text("order: from-file\n")
    result = reforge(["doctor", "--project", str(project), "-i", "localhost,", "-e", f"out_dir={tmp_path}",
                      "-e", '{"count": 3, "nested": {"a": [1, "two"]}}', "-e", "order=inline", "-e", "@more.yml"],
                     env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = report(tmp_path)
    assert seen["hf_token_seen"] is False, "HF_TOKEN is not on the allow-list"
    assert seen["lang"] == "C.UTF-8"
    assert (seen["count"], seen["count_type"]) == (3, "int")
    assert seen["nested"] == {"a": [1, "two"]}
    assert seen["order"] == "from-file", "later -e values win, as with ansible-playbook"


def test_no_secret_and_no_environment_dump_in_any_run_record(tmp_path, env):
    project = make_project(tmp_path / "proj")
    (tmp_path / "secrets.yml").write_text(f"db_password: {FILE_PASSWORD}\n")
    args = ["doctor", "--project", str(project), "-i", "localhost,", "-v",
            "-e", f"out_dir={tmp_path}", "-e", "fail_with_secrets=true",
            "-e", f"ssh_keys_private_key={PRIVATE_KEY} private_key_expected={PRIVATE_KEY}",
            "-e", f"github_pat={GITHUB_PAT} vault_passphrase={PASSPHRASE} ssh_keys_source=generate",
            "-e", json.dumps({"git_credential": CREDENTIAL, "team_deploy_material": SPEC_SECRET}),
            "-e", "@secrets.yml"]
    result = reforge(args, env, tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert report(tmp_path)["key_seen"] is True, "the play still gets the values"
    state = tmp_path / "state"
    runs = [path for path in (state / "reforge" / "runs").iterdir() if path.is_dir()]
    assert len(runs) == 1
    command = json.loads((runs[0] / "command").read_text())
    assert "env" not in command and "HF_TOKEN" not in json.dumps(command)
    extra_files = [arg[1:] for arg in command["command"] if arg.startswith("@")]
    assert extra_files, command
    for name in extra_files:
        if name != str(tmp_path / "secrets.yml"):
            assert not os.path.exists(name), f"{name} was left behind"
    assert stat.S_IMODE(runs[0].stat().st_mode) == 0o700
    for path in every_file(state, tmp_path / "tmp"):
        text = path.read_text(errors="replace")
        for secret in SECRETS:
            assert secret not in text, f"{secret} is in {path}"
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_run_records_are_not_kept_through_a_link_into_storage(tmp_path, env):
    storage, home = tmp_path / "storage", tmp_path / "home"
    (storage / ".local").mkdir(parents=True)
    home.mkdir()
    (home / ".local").symlink_to(storage / ".local")
    env["XDG_STATE_HOME"] = str(home / ".local" / "state")
    project = make_project(tmp_path / "proj")
    result = reforge(["doctor", "--project", str(project), "-i", "localhost,", "-e", f"out_dir={tmp_path}", "--json"],
                     env, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    artifacts = Path(json.loads(result.stdout)["artifacts"])
    assert artifacts.is_dir()
    assert not str(artifacts.resolve()).startswith(str(storage)), artifacts
    assert not list((storage / ".local").rglob("runs")), "no run record under storage"
    assert stat.S_IMODE(artifacts.parent.stat().st_mode) == 0o700
    assert not artifacts.parent.is_symlink()
