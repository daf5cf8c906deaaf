"""The ssh_keys role against a temporary home and a real sshd: modes, config, known_hosts, key sources, secrecy."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from sshlab import SSH_ALIAS, Sshd, Workspace, assert_no_private_key, make_workspace, run

GITHUB_FINGERPRINTS = {
    # Published by GitHub ("GitHub's SSH key fingerprints"); the role's pinned keys must hash to these.
    "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
    "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
    "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
}

GITHUB_GREETING = "Hi reforge! You have successfully authenticated, but GitHub does not provide shell access."


def mode(path: Path) -> str:
    """Permission bits of path (following links), as an octal string."""
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def digest(path: Path) -> str:
    """SHA-256 of a file's content."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_source_gives_modes_config_known_hosts_and_a_working_login(workspace: Workspace) -> None:
    workspace.ssh_dir.mkdir(mode=0o755)
    user_config = "Host other.example\n    User someone\n"
    (workspace.ssh_dir / "config").write_text(user_config, encoding="utf-8")

    result = workspace.converge()

    ssh_dir = workspace.ssh_dir
    assert mode(ssh_dir) == "0700"
    assert mode(ssh_dir / "id_ed25519") == "0600"
    assert mode(ssh_dir / "id_ed25519.pub") == "0644"
    assert mode(ssh_dir / "config") == "0600"
    assert mode(ssh_dir / "known_hosts") == "0644"
    assert (ssh_dir / "id_ed25519").read_bytes() == workspace.controller_key.read_bytes()

    config = (ssh_dir / "config").read_text(encoding="utf-8")
    assert config.startswith("# BEGIN reforge ssh_keys: hosts\n"), config
    assert config.endswith(user_config), "the user's own entries are kept after the managed block"
    entry = config.split(f"Host {SSH_ALIAS}\n", 1)[1].split("Host ", 1)[0]
    assert "HostName 127.0.0.1" in entry
    assert f"Port {workspace.sshd.port}" in entry
    assert f"User {workspace.sshd.user}" in entry
    assert f'IdentityFile "{ssh_dir / "id_ed25519"}"' in entry
    assert "IdentitiesOnly yes" in entry

    fingerprints = run(["ssh-keygen", "-l", "-f", str(ssh_dir / "known_hosts")]).stdout
    github = {line.split()[1] for line in fingerprints.splitlines() if " github.com " in line}
    assert github == GITHUB_FINGERPRINTS
    assert run(["ssh-keygen", "-F", f"[127.0.0.1]:{workspace.sshd.port}", "-f", str(ssh_dir / "known_hosts")], check=False).returncode == 0

    login = workspace.ssh("echo", "reforge-login-ok")
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "reforge-login-ok"
    assert_no_private_key([result.output], ssh_dir / "id_ed25519")


def test_converged_home_reports_no_change_on_rerun_and_check_diff(workspace: Workspace) -> None:
    workspace.converge()
    before = {path.name: digest(path) for path in workspace.ssh_dir.iterdir()}

    second = workspace.converge()
    check = workspace.converge("--check", "--diff")

    assert second.changed == 0, str(second)
    assert check.changed == 0, str(check)
    assert {path.name: digest(path) for path in workspace.ssh_dir.iterdir()} == before
    assert_no_private_key(workspace.outputs, workspace.ssh_dir / "id_ed25519")


def test_check_mode_on_a_new_home_reports_changes_and_writes_nothing(workspace: Workspace) -> None:
    result = workspace.converge("--check", "--diff")

    assert result.changed > 0, str(result)
    assert not workspace.ssh_dir.exists()
    assert_no_private_key(workspace.outputs, workspace.controller_key)


def test_unprotected_private_key_is_refused_by_ssh_and_fixed_by_a_rerun(workspace: Workspace) -> None:
    workspace.converge()
    key = workspace.ssh_dir / "id_ed25519"
    key.chmod(0o644)

    refused = workspace.ssh("true")
    assert refused.returncode == 255
    assert "UNPROTECTED PRIVATE KEY FILE" in refused.stderr

    rerun = workspace.converge()
    assert rerun.changed >= 1
    assert mode(key) == "0600"
    accepted = workspace.ssh("true")
    assert accepted.returncode == 0, accepted.stderr


def test_symlinked_ssh_dir_stays_a_link_and_its_target_gets_the_modes(workspace: Workspace) -> None:
    storage_ssh = workspace.root / "storage" / ".ssh"
    storage_ssh.mkdir(parents=True, mode=0o755)
    storage_ssh.chmod(0o755)
    workspace.ssh_dir.symlink_to(storage_ssh)

    workspace.converge()
    second = workspace.converge()

    assert workspace.ssh_dir.is_symlink()
    assert os.readlink(workspace.ssh_dir) == str(storage_ssh)
    assert mode(storage_ssh) == "0700"
    assert mode(storage_ssh / "id_ed25519") == "0600"
    assert (storage_ssh / "config").is_file() and (storage_ssh / "known_hosts").is_file()
    assert second.changed == 0, str(second)
    assert workspace.ssh("true").returncode == 0


def test_vars_source_writes_the_key_and_never_prints_it_even_verbose(tmp_path: Path, sshd: Sshd) -> None:
    workspace = make_workspace(tmp_path, sshd, "vars")
    secret = workspace.controller_key.read_text(encoding="utf-8")
    public = workspace.controller_key.with_name("id_test.pub").read_text(encoding="utf-8")
    sshd.authorize(workspace.controller_key.with_name("id_test.pub"))
    # Strip the final newline, as a vault or a YAML block often does; the role puts it back.
    workspace.variables.update(ssh_keys_private_key=secret.rstrip("\n"), ssh_keys_public_key=public)

    workspace.converge("-vvv")
    second = workspace.converge("--check", "--diff", "-vvv")

    key = workspace.ssh_dir / "id_ed25519"
    assert key.read_text(encoding="utf-8") == secret
    assert mode(key) == "0600"
    assert mode(workspace.ssh_dir / "id_ed25519.pub") == "0644"
    assert second.changed == 0, str(second)
    assert workspace.ssh("true").returncode == 0
    assert_no_private_key(workspace.outputs, key)


def test_generate_source_creates_a_key_once_prints_its_public_half_and_checks_the_login(tmp_path: Path, sshd: Sshd) -> None:
    workspace = make_workspace(tmp_path, sshd, "generate")

    first = workspace.converge()
    key = workspace.ssh_dir / "id_ed25519"
    public = workspace.ssh_dir / "id_ed25519.pub"
    assert mode(key) == "0600" and mode(public) == "0644"
    assert run(["ssh-keygen", "-l", "-f", str(key)]).stdout.rstrip().endswith("(ED25519)")
    assert public.read_text(encoding="utf-8").strip() in first.output, "the public key is shown to add to GitHub"
    key_digest = digest(key)

    second = workspace.converge()
    check = workspace.converge("--check", "--diff")
    assert second.changed == 0, str(second)
    assert check.changed == 0, str(check)
    assert digest(key) == key_digest, "an existing key is never regenerated"

    not_yet = workspace.playbook("--tags", "ssh_keys_check")
    assert not_yet.returncode != 0 and not_yet.failed >= 1, "the check fails while the server does not know the key"

    # Answer like GitHub: authenticated, no shell, exit 1.
    sshd.authorize(public, f"command=\"echo '{GITHUB_GREETING}' >&2; exit 1\"")
    assert workspace.ssh().returncode == 1
    checked = workspace.converge("--tags", "ssh_keys_check")
    assert f"Authenticated to {SSH_ALIAS}" in checked.output
    assert checked.changed == 0
    assert_no_private_key(workspace.outputs, key)


def test_generate_source_derives_a_missing_public_key_and_keeps_the_private_one(tmp_path: Path, sshd: Sshd) -> None:
    workspace = make_workspace(tmp_path, sshd, "generate")
    workspace.ssh_dir.mkdir(mode=0o700)
    key = workspace.ssh_dir / "id_ed25519"
    key.write_bytes(workspace.controller_key.read_bytes())
    key.chmod(0o640)

    workspace.converge()

    assert key.read_bytes() == workspace.controller_key.read_bytes()
    assert mode(key) == "0600"
    derived = (workspace.ssh_dir / "id_ed25519.pub").read_text(encoding="utf-8").split()[:2]
    assert derived == workspace.controller_key.with_name("id_test.pub").read_text(encoding="utf-8").split()[:2]
    assert_no_private_key(workspace.outputs, key)


def test_none_source_keeps_the_key_that_is_there_and_fixes_its_modes(tmp_path: Path, sshd: Sshd) -> None:
    workspace = make_workspace(tmp_path, sshd, "none")
    sshd.authorize(workspace.controller_key.with_name("id_test.pub"))
    workspace.ssh_dir.mkdir(mode=0o755)
    workspace.ssh_dir.chmod(0o755)
    key = workspace.ssh_dir / "id_ed25519"
    key.write_bytes(workspace.controller_key.read_bytes())
    key.chmod(0o644)
    public = workspace.ssh_dir / "id_ed25519.pub"
    public.write_bytes(workspace.controller_key.with_name("id_test.pub").read_bytes())
    public.chmod(0o600)

    first = workspace.converge()
    second = workspace.converge()

    assert key.read_bytes() == workspace.controller_key.read_bytes()
    assert (mode(workspace.ssh_dir), mode(key), mode(public)) == ("0700", "0600", "0644")
    assert first.changed >= 3 and second.changed == 0, str(second)
    assert workspace.ssh("true").returncode == 0
    assert_no_private_key(workspace.outputs, key)


def test_the_secret_search_finds_a_key_printed_the_way_ansible_prints_values(workspace: Workspace) -> None:
    """Control for the secrecy assertions: a key shown as Ansible shows a string (JSON, escaped newlines) is found."""
    secret = workspace.controller_key.read_text(encoding="utf-8")
    leaked = 'ok: [localhost] => {"changed": false, "content": ' + json.dumps(secret) + "}"

    with pytest.raises(AssertionError, match="a line of the private key appears"):
        assert_no_private_key(["clean output", leaked], workspace.controller_key)
    assert_no_private_key(["clean output"], workspace.controller_key)
