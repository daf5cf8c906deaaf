# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The path_guard module's prefix rule, applied on the controller: no round trip to the host.

The prefix rule (rule=prefix with home given) only reads the path string and the home
directory, so it needs nothing from the host; the playbooks' validation pre_tasks
run it for every role that reads a prefix. The rules stay in one place: this plugin
calls the very function the module calls. Every other rule (config_file,
conda_dir), and a prefix without home, reads the host's file system and runs the
module there as before.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.plugins.action import ActionBase
from ansible_collections.reforge.workstation.plugins.modules.path_guard import checked_path

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "str", "required": True},
    "variable": {"type": "str", "required": True},
    "rule": {"type": "str", "default": "prefix", "choices": ["prefix", "config_file", "conda_dir"]},
    # Not type path: ~ would expand to the controller's home, not the host's.
    "home": {"type": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp: Any = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if args["rule"] != "prefix" or not args["home"]:
            result.update(self._execute_module(module_name="reforge.workstation.path_guard", module_args=self._task.args,
                                               task_vars=task_vars))
            return result
        result["changed"] = False
        try:
            # The module's own function, so the refusal is the module's, word for word.
            result["path"] = checked_path(args["path"], args["variable"], "prefix", args["home"], -1)
        except ValueError as error:
            result["failed"] = True
            result["msg"] = str(error)
        return result
