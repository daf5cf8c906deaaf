# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that check a path with module_utils/conda_prefix_guard.py."""

from __future__ import annotations


class ModuleDocFragment:
    # conda_prefix_guard.home_dir gives the default.
    DOCUMENTATION = r"""
options:
  home:
    description: The user's home directory; defaults to the home of the user the module runs as.
    type: path
"""

    # The prefix that conda_prefix_info describes and conda_prefix_remove deletes, checked by identity.
    PREFIX = r"""
options:
  path:
    description: Absolute path of the prefix.
    type: path
    required: true
  system_dirs:
    description: Directories the prefix may never be (compared by identity).
    type: list
    elements: path
    default: []
"""
