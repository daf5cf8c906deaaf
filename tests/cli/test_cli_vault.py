"""Ansible's habits: -C/-D, and vaulted values opened with --vault-password-file or --ask-vault-pass.

A throw-away project's playbook writes what it received into a scratch file, so
the tests read what ansible-playbook really decrypted, not what reforge said.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fakeproject import clean_env, make_project

# A stand-in for key material: the test is about the vault, so no real key (nor its header) is committed.
KEY = "vaulted-ssh-keys-value\nsecond line AAAAnotarealkey\nthird line"
PASSWORD = "correct horse battery staple"

# converge -> playbooks/base.yml: write the (vaulted) key where the test can read it.
WRITE_KEY = """\
- name: Write what the play received
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the key
      ansible.builtin.copy:
        content: "{{ ssh_keys_private_key }}"
        dest: "{{ out_dir }}/id_ed25519"
        mode: "0600"
      no_log: true
"""


def reforge(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reforge", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return make_project(tmp_path / "project", {"base": WRITE_KEY})


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path / "state")


@pytest.fixture
def vaulted(tmp_path: Path) -> Path:
    """An extra-vars file whose ssh_keys_private_key is a vaulted string, and the password file."""
    password = tmp_path / "vault-password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    encrypted = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-vault")), "encrypt_string", "--vault-password-file",
         str(password), "--stdin-name", "ssh_keys_private_key"],
        input=KEY, capture_output=True, text=True, check=True, env=clean_env(tmp_path / "vault-state"))
    varsfile = tmp_path / "secrets.yml"
    varsfile.write_text(encrypted.stdout)
    assert PASSWORD not in varsfile.read_text() and "notarealkey" not in varsfile.read_text()
    return varsfile


def test_a_vaulted_ssh_keys_value_is_decrypted_with_a_password_file(project, env, vaulted, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = reforge(["converge", "--project", str(project), "-e", f"@{vaulted}", "-e", f"out_dir={out}",
                      "--vault-password-file", str(tmp_path / "vault-password")], env, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / "id_ed25519").read_text() == KEY
    assert stat.S_IMODE((out / "id_ed25519").stat().st_mode) == 0o600
    assert "notarealkey" not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_ask_vault_pass_reads_the_password_and_never_shows_it(project, env, vaulted, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = reforge(["converge", "--project", str(project), "-e", f"@{vaulted}", "-e", f"out_dir={out}", "-J"],
                     env, tmp_path, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / "id_ed25519").read_text() == KEY
    assert PASSWORD not in result.stdout + result.stderr
    runs = Path(env["XDG_STATE_HOME"]) / "reforge" / "runs"
    for record in runs.rglob("*"):
        if record.is_file():
            assert PASSWORD not in record.read_text(errors="replace"), record


def test_without_the_password_the_run_fails_and_writes_nothing(project, env, vaulted, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = reforge(["converge", "--project", str(project), "-e", f"@{vaulted}", "-e", f"out_dir={out}"],
                     env, tmp_path)
    assert result.returncode != 0
    assert not (out / "id_ed25519").exists()


def test_a_missing_password_file_is_refused_before_anything_runs(project, env, tmp_path):
    result = reforge(["converge", "--project", str(project), "--vault-password-file", str(tmp_path / "nope")],
                     env, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "vault password file" in result.stderr and "nope" in result.stderr
    assert not (Path(env["XDG_STATE_HOME"]) / "reforge" / "runs").exists()


def test_short_check_and_diff_flags_change_nothing_and_show_the_diff(project, env, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (project / "playbooks" / "base.yml").write_text(WRITE_KEY.replace("      no_log: true\n", ""))
    result = reforge(["converge", "--project", str(project), "-e", "ssh_keys_private_key=hello",
                      "-e", f"out_dir={out}", "-C", "-D", "-v"], env, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (out / "id_ed25519").exists()
    runs = sorted((Path(env["XDG_STATE_HOME"]) / "reforge" / "runs").iterdir())
    stdout = (runs[-1] / "stdout").read_text()
    # The diff ansible-playbook printed: --diff reached it; the secret's value is masked in the record.
    assert "--- before" in stdout and f"+++ after: {out / 'id_ed25519'}" in stdout
    assert "hello" not in stdout
