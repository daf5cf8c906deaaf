"""plugins/action/path_guard.py: the prefix rule runs on the controller, every other rule on the host.

One real ansible-playbook run against a host whose Python does not exist: a task that
reached the host would fail with "interpreter not found", so a passing prefix check
proves it cost no round trip. Its refusal must be the module's, word for word.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.reforge.workstation.plugins.modules import path_guard

REPO = Path(__file__).resolve().parents[2]
HOME = "/home/me"

PLAY = """
- name: Check paths with path_guard
  hosts: target
  gather_facts: false
  tasks:
    - name: A prefix with home given
      reforge.workstation.path_guard:
        path: ~/miniforge3
        variable: miniforge_prefix
        home: {home}
      register: expanded

    - name: A prefix the rule refuses
      reforge.workstation.path_guard:
        path: "{home}/mini forge"
        variable: base_env_prefix
        home: {home}
      register: refused
      ignore_errors: true

    - name: A configuration file, which needs the host's file system
      reforge.workstation.path_guard:
        path: ~/.condarc
        variable: miniforge_condarc_path
        rule: config_file
        home: {home}
      register: on_host
      ignore_errors: true

    - name: A prefix without home, which needs the host's home
      reforge.workstation.path_guard:
        path: ~/miniforge3
        variable: miniforge_prefix
      register: no_home
      ignore_errors: true

    - name: An option the module does not take
      reforge.workstation.path_guard:
        path: /opt/x
        variable: miniforge_prefix
        home: {home}
        mode: "0755"
      register: bad_option
      ignore_errors: true

    - name: Hand the results back
      ansible.builtin.debug:
        msg: "{{{{ {{'expanded': expanded, 'refused': refused, 'on_host': on_host, 'no_home': no_home,
                  'bad_option': bad_option}} | to_json }}}}"
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    scratch = tmp_path_factory.mktemp("path_guard_action")
    (scratch / "play.yml").write_text(PLAY.format(home=HOME))
    (scratch / "inventory.yml").write_text(
        "all:\n  hosts:\n    target:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: %s\n" % (scratch / "no-python-here"))
    (scratch / "ansible.cfg").write_text(
        "[defaults]\ncollections_path = %s\nstdout_callback = ansible.posix.json\n" % (REPO / "collections"))
    env = dict(os.environ, ANSIBLE_CONFIG=str(scratch / "ansible.cfg"))
    ran = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(scratch / "inventory.yml"),
                          str(scratch / "play.yml")], capture_output=True, text=True, env=env, cwd=scratch,
                         check=False)
    data = json.JSONDecoder().raw_decode(ran.stdout[ran.stdout.index("{"):])[0]
    last = data["plays"][0]["tasks"][-1]["hosts"]["target"]
    assert "msg" in last, ran.stdout[-3000:] + ran.stderr[-3000:]
    return json.loads(last["msg"]) if isinstance(last["msg"], str) else last["msg"]


def test_a_prefix_is_expanded_without_reaching_the_host(results: dict[str, Any]) -> None:
    assert not results["expanded"].get("failed"), results["expanded"]
    assert results["expanded"]["path"] == HOME + "/miniforge3"
    assert results["expanded"]["changed"] is False


def test_a_refused_prefix_gets_the_modules_message(results: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as module_refusal:
        path_guard.check(HOME + "/mini forge", "base_env_prefix", "prefix", HOME, os.getuid())
    assert results["refused"]["failed"] is True
    assert results["refused"]["msg"] == str(module_refusal.value)
    assert results["refused"]["msg"].startswith("Refusing prefix '/home/me/mini forge' (base_env_prefix): it holds a space")


@pytest.mark.parametrize("task", ["on_host", "no_home"])
def test_every_other_check_runs_the_module_on_the_host(results: dict[str, Any], task: str) -> None:
    # The host's Python does not exist: only the module's run on the host fails this way.
    assert results[task]["failed"] is True
    assert "no-python-here" in json.dumps(results[task])


def test_an_unknown_option_is_refused(results: dict[str, Any]) -> None:
    assert results["bad_option"]["failed"] is True
    assert "mode" in results["bad_option"]["msg"]
