#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add conda's init block to the user's rc file without conda init's side effects, or remove this prefix's blocks."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: miniforge_shell_rc
short_description: Let conda init write its block, keeping the user's lines and other installations' blocks
description:
  - With I(state=present), runs C(PREFIX/bin/conda init SHELL) against copies of the user's rc files in a scratch
    home, so conda itself chooses the file (C(~/.bash_profile) on macOS, C($ZDOTDIR/.zshrc)) and writes the block.
  - Real C(conda init) also comments out user lines (a virtualenv's C(source .../bin/activate), another
    installation's C(. .../etc/profile.d/conda.sh)) and replaces every conda block, whatever prefix it points at.
    The module puts those lines and blocks back before the result replaces the real file, so only lines that set up
    this very prefix stay commented out.
  - With I(state=absent), removes the conda and mamba init blocks that point at this prefix and un-comments the lines
    conda commented out for it, from C(~/.bashrc), C(~/.bash_profile), C(~/.zshrc) and C($ZDOTDIR/.zshrc). Blocks
    of other installations stay; C(conda init --reverse) would remove them all.
options:
  prefix:
    description: The conda prefix whose init block is managed.
    type: path
    required: true
  state:
    description: Whether the prefix's init block should be present or absent.
    type: str
    choices: [present, absent]
    default: present
  shell:
    description: The shell to initialise with I(state=present).
    type: str
    choices: [bash, zsh]
    default: bash
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
  - reforge.workstation.conda_prefix_guard
attributes:
  check_mode:
    support: full
    details: Runs conda init in the scratch home only when C(conda init --dry-run) reports no change to the
      prefix's own files, and reports the rc file's change without writing it.
  diff_mode:
    support: full
    details: Reports the rc file's content before and after.
"""

EXAMPLES = r"""
- name: Add conda's init block for bash
  reforge.workstation.miniforge_shell_rc:
    prefix: /home/me/miniforge3
    shell: bash
  register: conda_rc

- name: Remove the init blocks of a prefix
  reforge.workstation.miniforge_shell_rc:
    prefix: /home/me/miniforge3
    state: absent
"""

RETURN = r"""
changed:
  description: Whether an rc file was changed (or would be, in check mode).
  returned: always
  type: bool
rc_file:
  description: With I(state=present), the rc file conda init chose for the shell.
  returned: when state is present
  type: str
rc_files:
  description: With I(state=absent), the rc files that were changed (or would be, in check mode).
  returned: when state is absent
  type: list
  elements: str
"""

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.reforge.workstation.plugins.module_utils.conda_prefix_guard import home_dir


CONDA_MARKERS = ("# >>> conda initialize >>>", "# <<< conda initialize <<<")
MAMBA_MARKERS = ("# >>> mamba initialize >>>", "# <<< mamba initialize <<<")
COMMENT = "# commented out by conda initialize"
RESULT_LINE = re.compile(r"^(modified|no change|needs sudo)\s+(\S.*)$")


def block_pattern(markers):
    """A whole init block with its own line ending, as conda's CONDA_INITIALIZE_RE_BLOCK."""
    return re.compile(
        r"(^" + re.escape(markers[0]) + r"(?:\n|\r\n)[\s\S]*?" + re.escape(markers[1]) + r"(?:\n|\r\n)?)",
        re.MULTILINE,
    )


def refers_to(text, prefix):
    """Whether TEXT (a block or a line) sets up PREFIX."""
    return ("'%s/" % prefix) in text or ('"%s/' % prefix) in text or ("'%s'" % prefix) in text


def sets_up_prefix(line, prefix):
    """Whether a user line conda commented out was one setting up PREFIX itself (conda is right to keep it off)."""
    return prefix + "/" in line or re.search(
        r"export PATH=['\"].*?" + re.escape(os.path.basename(prefix)) + r"/bin:\$PATH['\"]", line
    ) is not None


def restore_lines(before, after, prefix):
    """AFTER's lines, except that a line conda commented out comes back as it was in BEFORE.

    conda init edits line by line, so the texts between blocks keep their line count.
    Lines that set up this prefix stay commented out: the block replaces them.
    """
    old, new = before.splitlines(True), after.splitlines(True)
    if len(old) != len(new):
        return after
    kept = []
    for was, now in zip(old, new):
        if now != was and now.rstrip("\r\n").endswith(COMMENT) and not sets_up_prefix(was, prefix):
            kept.append(was)
        else:
            kept.append(now)
    return "".join(kept)


def repair(before, after, prefix):
    """conda init's result AFTER, with BEFORE's user lines and other installations' conda blocks put back."""
    pattern = block_pattern(CONDA_MARKERS)
    old, new = pattern.split(before), pattern.split(after)
    old_texts, old_blocks, new_texts, new_blocks = old[0::2], old[1::2], new[0::2], new[1::2]
    if not new_blocks:
        return after
    ours = new_blocks[0]
    if not old_blocks:
        # conda appended "\n" + block + "\n" to the file.
        if len(new_blocks) != 1 or not new_texts[0].endswith("\n"):
            return after
        return restore_lines(before, new_texts[0][:-1], prefix) + "\n" + ours + new_texts[1]
    if len(old_blocks) != len(new_blocks):
        return after
    parts = []
    placed = False
    last_foreign = None
    for index, text in enumerate(old_texts):
        parts.append(restore_lines(text, new_texts[index], prefix))
        if index == len(old_blocks):
            break
        block = old_blocks[index]
        if refers_to(block, prefix):
            if not placed:
                parts.append(ours)
                placed = True
        else:
            parts.append(block)
            last_foreign = len(parts)
    if not placed and last_foreign is not None:
        glue = "" if parts[last_foreign - 1].endswith("\n") else "\n"
        parts.insert(last_foreign, glue + ours)
    return "".join(parts)


def remove_blocks(content, markers, prefix):
    """CONTENT without the blocks of MARKERS that point at PREFIX, and the empty lines init put around them.

    conda appends "\n" + block + "\n" (an empty line before and after the block); a block
    that replaced another in place has none, and its neighbours are left alone.
    """
    pattern = block_pattern(markers)
    while True:
        match = next((m for m in pattern.finditer(content) if refers_to(m.group(0), prefix)), None)
        if match is None:
            return content
        head, tail = content[:match.start()], content[match.end():]
        if (head.endswith("\n\n") or head == "\n") and (tail == "" or tail.startswith(("\n", "\r\n"))):
            head = head[:-1]
            tail = tail[tail.index("\n") + 1:] if tail else tail
        content = head + tail


def uncomment(content, prefix):
    """Un-comment the lines conda init commented out for PREFIX (what conda init --reverse does for them)."""
    pattern = re.compile(r"^# (.*?)  " + re.escape(COMMENT) + r"(?=\r?$)", re.MULTILINE)
    return pattern.sub(lambda m: m.group(1) if sets_up_prefix(m.group(1), prefix) else m.group(0), content)


def read_text(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        return handle.read()


def write_text(path, text):
    """Write in place, as conda init does: the file keeps its mode, owner and any link to it."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        handle.write(text)


def rc_candidates(home):
    """The rc files conda init may choose: the real path -> the name under a scratch home."""
    found = {}
    for name in (".bashrc", ".bash_profile", ".zshrc"):
        found[os.path.join(home, name)] = name
    if os.environ.get("ZDOTDIR"):
        found[os.path.join(os.path.abspath(os.environ["ZDOTDIR"]), ".zshrc")] = os.path.join("zdotdir", ".zshrc")
    return found


def conda_init(module, prefix, shell, env, dry_run):
    argv = [os.path.join(prefix, "bin", "conda"), "init"] + (["--dry-run"] if dry_run else []) + [shell]
    rc, out, err = module.run_command(argv, environ_update=env)
    if rc != 0:
        module.fail_json(msg="conda init %s failed (rc %d): %s" % (shell, rc, (err or out).strip()), rc=rc)
    return [RESULT_LINE.match(line.strip()).groups() for line in out.splitlines() if RESULT_LINE.match(line.strip())]


def present(module, prefix, shell, home):
    candidates = rc_candidates(home)
    if module.check_mode:
        # conda init --dry-run on the real home writes nothing; if it would change the prefix's own files,
        # a run in the scratch home would write them, so only say that something changes.
        results = conda_init(module, prefix, shell, {}, True)
        rc_lines = [path for state, path in results if path in candidates]
        if any(state != "no change" for state, path in results if path not in candidates):
            module.exit_json(changed=True, rc_file=rc_lines[0] if rc_lines else None)
    scratch = tempfile.mkdtemp(prefix="reforge-conda-init-")
    try:
        for real, name in candidates.items():
            copy = os.path.join(scratch, name)
            if not os.path.isdir(os.path.dirname(copy)):
                os.makedirs(os.path.dirname(copy))
            if os.path.isfile(real):
                shutil.copyfile(real, copy)
        env = {"HOME": scratch}
        if os.environ.get("ZDOTDIR"):
            env["ZDOTDIR"] = os.path.join(scratch, "zdotdir")
        results = conda_init(module, prefix, shell, env, False)
        by_scratch = dict((os.path.join(scratch, name), real) for real, name in candidates.items())
        chosen = [(state, path) for state, path in results if path in by_scratch]
        if len(chosen) != 1:
            module.fail_json(msg="conda init %s named no rc file of the home (output: %s)" % (shell, results))
        prefix_changed = any(state != "no change" for state, path in results if path not in by_scratch)
        rc_file = by_scratch[chosen[0][1]]
        before = read_text(rc_file)
        after = read_text(chosen[0][1]) or ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wanted = repair(before or "", after, prefix)
    changed = wanted != (before or "") or before is None
    if changed and not module.check_mode:
        write_text(rc_file, wanted)
    result = {"changed": changed or prefix_changed, "rc_file": rc_file}
    if module._diff:
        result["diff"] = {"before": before or "", "after": wanted, "before_header": rc_file, "after_header": rc_file}
    module.exit_json(**result)


def absent(module, prefix, home):
    changed_files, diffs = [], []
    for path in rc_candidates(home):
        before = read_text(path)
        if before is None:
            continue
        after = uncomment(remove_blocks(remove_blocks(before, MAMBA_MARKERS, prefix), CONDA_MARKERS, prefix), prefix)
        if after == before:
            continue
        changed_files.append(path)
        diffs.append({"before": before, "after": after, "before_header": path, "after_header": path})
        if not module.check_mode:
            write_text(path, after)
    result = {"changed": bool(changed_files), "rc_files": changed_files}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


ARGUMENT_SPEC = {
    "prefix": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "shell": {"type": "str", "choices": ["bash", "zsh"], "default": "bash"},
    "home": {"type": "path"},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    prefix = os.path.normpath(module.params["prefix"])
    home = module.params["home"] or home_dir()
    if module.params["state"] == "absent":
        absent(module, prefix, home)
    present(module, prefix, module.params["shell"], home)


if __name__ == "__main__":
    main()
