# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of reforge.workstation documents alike.

A module lists ansible.builtin.action_common_attributes, which describes the
check_mode, diff_mode and platform attributes, then reforge.workstation.common;
it only sets each attribute's support, and details where its behaviour needs
words. A module that never changes anything lists
reforge.workstation.common.read_only as well, instead of setting them.
"""

from __future__ import annotations


class ModuleDocFragment:
    # The authors, and the hosts the modules run on (they rely on POSIX file
    # system calls, users and shells).
    DOCUMENTATION = r"""
options: {}
author:
  - reforge contributors (@reforge)
attributes:
  platform:
    platforms: posix
"""

    # A module that only reads: check mode runs it unchanged, diff mode has nothing to show.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Read-only, so it runs the same in check mode.
  diff_mode:
    support: none
    details: Changes nothing, so there is nothing to show.
"""
