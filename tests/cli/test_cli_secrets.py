"""reforge's handling of extra vars and secrets, without running Ansible."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from reforge.errors import UsageError  # noqa: E402
from reforge.extravars import load_extra_vars  # noqa: E402
from reforge.secrets import MASK, Scrubber, secret_values  # noqa: E402
from reforge.summary import Failure, failure_message, final_failures  # noqa: E402


def test_secret_values_are_found_by_key_at_any_depth() -> None:
    data = {
        "miniforge_prefix": "/opt/conda",
        "api_token": "tok-1",
        "Github_API_KEY": 12345,
        "service": {"db_password": "pw-2", "port": 5432, "client_secret": {"a": ["s-3", "s-4"]}},
        "ssh_keys_no_log": False,
    }
    assert secret_values(data) == {"tok-1", "12345", "pw-2", "s-3", "s-4"}


def test_scrubber_masks_whole_values_each_line_and_nested_data() -> None:
    scrubber = Scrubber(["hunter2", "hunter22", "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----", "ab"])
    assert scrubber.text("pw hunter22 and hunter2") == f"pw {MASK} and {MASK}"
    assert scrubber.text("line AAAABBBBCCCC leaked") == f"line {MASK} leaked"
    # Too short to be a secret; masking it would garble every count.
    assert scrubber.text("ab 12") == "ab 12"
    assert scrubber.data({"hunter2": ["x hunter2", 3]}) == {MASK: [f"x {MASK}", 3]}


def test_extra_vars_in_every_form(tmp_path: Path) -> None:
    (tmp_path / "vars.yml").write_text(
        "db_password: !unsafe 'p{{w}}-file'\nvault_token: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n")
    (tmp_path / "whole.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    extra = load_extra_vars(["api_key=k-1 name='a b'", '{"x": {"secret": "j-2"}}', "@vars.yml", "@whole.yml"],
                            tmp_path)
    assert extra.args == ["api_key=k-1 name='a b'", '{"x": {"secret": "j-2"}}',
                          f"@{tmp_path / 'vars.yml'}", f"@{tmp_path / 'whole.yml'}"]
    assert {"k-1", "j-2", "p{{w}}-file"} <= extra.secrets
    assert "a b" not in extra.secrets


@pytest.mark.parametrize(("value", "message"), [
    ("@", "a file name must follow the @"),
    ("[1, 2]", "must hold a mapping"),
    ('{"api_token": "s3cr3t-value"', "not valid YAML or JSON"),
    ("api_token='s3cr3t-value", "not valid key=value pairs"),
])
def test_bad_extra_vars_are_refused_without_echoing_them(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        load_extra_vars([value], tmp_path)
    assert "s3cr3t-value" not in str(error.value)


def test_failure_message_is_the_msg_only() -> None:
    assert failure_message({"msg": "boom", "stdout": "leak", "invocation": {"module_args": {"pw": "x"}}}) == "boom"
    assert "no_log" in failure_message({"censored": "hidden", "msg": "leak"})
    assert "no_log" in failure_message({"_ansible_no_log": True, "msg": "leak"})
    loop = {"msg": "One or more items failed",
            "results": [{"failed": False, "msg": "ok"}, {"failed": True, "censored": "x", "msg": "leak"}]}
    assert failure_message(loop) == "One or more items failed: (output hidden: the task has no_log)"
    assert failure_message({}) == "(no message)"


def test_rescued_and_ignored_failures_are_not_final() -> None:
    rescued = Failure("Try it", "web", "first")
    final = Failure("Give up", "web", "second")
    other = Failure("Try it", "db", "rescued too")
    hosts = {"web": {"failed": 1, "unreachable": 0}, "db": {"failed": 0, "unreachable": 0}}
    assert final_failures([rescued, other, final], hosts) == [final]


def test_paperspace_commands_default_to_the_paperspace_inventory(tmp_path):
    from reforge.cli import _request, build_parser  # noqa: PLC0415

    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True)
    (project / "inventory").mkdir()
    (project / "ansible.cfg").write_text("[defaults]\n")
    (project / "playbooks" / "startup.yml").write_text("---\n")
    (project / "playbooks" / "base.yml").write_text("---\n")
    (project / "inventory" / "paperspace.yml").write_text("---\n")
    startup, _ = _request(build_parser().parse_args(["startup", "--project", str(project)]), {}, tmp_path)
    assert startup.inventories == [str(project / "inventory" / "paperspace.yml")]
    converge, _ = _request(build_parser().parse_args(["converge", "--project", str(project)]), {}, tmp_path)
    assert converge.inventories == []


def test_secrets_are_named_by_pattern_not_by_any_word_in_the_name() -> None:
    # R12: ssh_keys_source=generate is not a secret; github_pat and vault_passphrase are.
    extra = load_extra_vars(["ssh_keys_source=generate ssh_keys_no_log=false ssh_keys_key_file=/k",
                             "github_pat=ghp_abc123 vault_passphrase=horse git_credential=cred-9",
                             "ssh_keys_private_key=PRIVATE api_token=tok-1 db_password=pw-2"], Path("."))
    assert extra.secrets == {"ghp_abc123", "horse", "cred-9", "PRIVATE", "tok-1", "pw-2"}
    scrubber = Scrubber(extra.secrets)
    assert scrubber.text("task 7: ssh_keys : key_generate | Generate an ed25519 key pair") == \
        "task 7: ssh_keys : key_generate | Generate an ed25519 key pair"
    assert scrubber.text("cloning with ghp_abc123 and horse") == f"cloning with {MASK} and {MASK}"


def test_options_marked_no_log_in_the_role_specs_are_secret(tmp_path: Path) -> None:
    from reforge.project import Project

    meta = tmp_path / "roles" / "team" / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      team_deploy_material: {type: str, no_log: true, description: x}\n"
        "      team_region: {type: str, description: y}\n")
    names = Project(tmp_path).secret_options()
    assert names == {"team_deploy_material"}
    extra = load_extra_vars(["team_deploy_material=blob-7 team_region=eu"], tmp_path, names)
    assert extra.secrets == {"blob-7"}


def test_the_project_roles_mark_their_secret_options() -> None:
    from reforge.project import Project

    names = Project(Path(__file__).resolve().parents[2]).secret_options()
    assert {"ssh_keys_private_key"} <= names
    assert not any(name in names for name in ("ssh_keys_source", "ssh_keys_no_log", "ssh_keys_key_file"))


def test_the_run_environment_is_the_allow_list_plus_what_reforge_and_the_runner_set(monkeypatch) -> None:
    from reforge.runner import run_environment

    caller = {"HF_TOKEN": "hf-1", "LANG": "C.UTF-8", "LC_ALL": "C", "AWS_SECRET_ACCESS_KEY": "a-2", "PATH": "/bin"}
    monkeypatch.setattr("os.environ", dict(caller))
    prepared = {**caller, "ANSIBLE_STDOUT_CALLBACK": "awx_display", "ANSIBLE_HOST_KEY_CHECKING": "False"}
    env = run_environment(prepared, caller, {"ANSIBLE_CONFIG": "/p/ansible.cfg", "PATH": "/bin"})
    assert env == {"LANG": "C.UTF-8", "LC_ALL": "C", "ANSIBLE_STDOUT_CALLBACK": "awx_display",
                   "ANSIBLE_CONFIG": "/p/ansible.cfg", "PATH": "/bin"}
    # A caller who sets the variable decides.
    chosen = {**caller, "ANSIBLE_HOST_KEY_CHECKING": "False"}
    assert run_environment(chosen, chosen, {})["ANSIBLE_HOST_KEY_CHECKING"] == "False"
