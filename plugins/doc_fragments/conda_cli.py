# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that run conda transactions through module_utils/conda_cli.py."""

from __future__ import annotations


class ModuleDocFragment:
    # conda_cli.installation_root finds the root of the installation from this
    # path, and channel_args turns the channels into -c ... --override-channels.
    DOCUMENTATION = r"""
options:
  conda:
    description:
      - Path of the conda executable, usually C(PREFIX/bin/conda) or C(PREFIX/condabin/conda).
    type: path
    required: true
  channels:
    description:
      - Channels to use, passed as C(-c) in order, together with
        C(--override-channels) so that only these are searched. Empty means
        the channels of C(.condarc).
    type: list
    elements: str
    default: []
"""
