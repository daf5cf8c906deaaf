"""The path_guard module's prefix rule, applied on the controller: no round trip to the host.

The prefix rule (rule=prefix with home given) only reads the path string and the home
directory, so it needs nothing from the host; the playbooks' validation pre_tasks
run it for every role that reads a prefix. The rules stay in one place: this plugin
loads library/path_guard.py and calls the same functions the module calls. Every
other rule (config_file, conda_dir), and a prefix without home, reads the host's
file system and runs the module there as before.

Ansible loads action_plugins/ beside the playbook, so this applies to the playbooks
in this folder; elsewhere the module runs on the host with the same result.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any, Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "str", "required": True},
    "variable": {"type": "str", "required": True},
    "rule": {"type": "str", "default": "prefix", "choices": ["prefix", "config_file", "conda_dir"]},
    "home": {"type": "str"},
}


def load_rules(path: str) -> ModuleType:
    """The path_guard module file, imported on the controller (its rules are plain functions)."""
    name = "reforge_path_guard_rules"
    loaded: Optional[ModuleType] = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AnsibleActionFail("cannot load the path_guard rules from %s" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp: Any = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if args["rule"] != "prefix" or not args["home"]:
            result.update(self._execute_module(module_name="path_guard", module_args=self._task.args,
                                               task_vars=task_vars))
            return result
        found = self._shared_loader_obj.module_loader.find_plugin_with_context("path_guard")
        if not found.resolved or not found.plugin_resolved_path:
            raise AnsibleActionFail("the path_guard module is not on the module path")
        rules = load_rules(found.plugin_resolved_path)
        result["changed"] = False
        try:
            # The module's own function, so the refusal is the module's, word for word.
            result["path"] = rules.checked_path(args["path"], args["variable"], "prefix", args["home"], -1)
        except ValueError as error:
            result["failed"] = True
            result["msg"] = str(error)
        return result
