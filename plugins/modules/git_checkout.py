#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: reforge contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clone a git repository, or fast-forward it, and never force anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: git_checkout
short_description: Clone a repository or fast-forward it, leaving local work alone
description:
  - Clones O(repo) into O(dest) when O(dest) is absent or an empty directory.
  - On later runs, fast-forwards the checked-out branch to the remote branch.
  - Never forces. A checkout with local changes to tracked files, with commits
    that the remote does not have, or whose history has diverged from the
    remote is reported (a warning and RV(status)) and left exactly as it is.
    So is a checkout on another branch, a detached HEAD, a checkout whose
    remote URL differs from O(repo), and a non-empty directory that is not a
    repository. None of these fail the task.
  - Untracked files do not block an update. If git refuses a fast-forward
    because it would overwrite one, the checkout is reported as C(blocked).
  - In check mode nothing is fetched. When the remote has commits that are not
    available locally, the module predicts the outcome from the local
    remote-tracking branch.
version_added: "1.0.0"
options:
  repo:
    description: URL of the remote repository, for example C(git@github.com:owner/name.git).
    type: str
    required: true
  dest:
    description: Path of the checkout.
    type: path
    required: true
  version:
    description:
      - Branch to clone and to keep up to date.
      - When omitted, the remote's default branch is cloned, and later runs
        update whatever branch is checked out.
      - A checkout on another branch than O(version) is left alone.
    type: str
  remote:
    description: Name given to the remote when cloning, and used for updates.
    type: str
    default: origin
  ssh_command:
    description:
      - Command git runs for SSH transport (the E(GIT_SSH_COMMAND) environment variable).
      - Empty means plain C(ssh). A C(core.sshCommand) set in the checkout's own config is never used.
    type: str
    default: ""
  git_executable:
    description: Path of the git program; found on E(PATH) when omitted.
    type: path
notes:
  - E(GIT_TERMINAL_PROMPT) is set to C(0), so git never waits for a password.
  - The checkout may have been written by someone else (a shared volume), so nothing it
    controls runs. Every git command gets C(-c) settings that turn off hooks, fsmonitor,
    credential helpers, askpass, signature checks and filter drivers (git-lfs's own
    commands aside), and allow only the file, ssh, http and https transports. The system config is ignored
    (E(GIT_CONFIG_NOSYSTEM)), the upload-pack program is fixed, and a checkout whose config
    rewrites the remote URL (C(url.*.insteadOf)) is left alone.
  - Credentials in URLs (the password, and for HTTP the whole user part) are shown as C(***)
    in every message and result.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - reforge.workstation.common
attributes:
  check_mode:
    support: full
    details: Fetches nothing, and reports in RV(status) what would happen.
  diff_mode:
    support: full
    details: Shows the commit checked out before and after.
"""

EXAMPLES = r"""
- name: Clone or fast-forward a repository over SSH
  reforge.workstation.git_checkout:
    repo: git@github.com:fastai/fastbook.git
    dest: /storage/git/fastbook
    version: master
    ssh_command: ssh -i ~/.ssh/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes
  register: checkout

- name: Show why a checkout was left alone
  ansible.builtin.debug:
    msg: "{{ checkout.dest }}: {{ checkout.msg }}"
  when: checkout.left_alone
"""

RETURN = r"""
changed:
  description: Whether the checkout was cloned or fast-forwarded (or would be, in check mode).
  returned: always
  type: bool
status:
  description:
    - What happened, or, in check mode, what would happen.
    - C(cloned) and C(updated) change the checkout; C(current) means it already matches the remote.
    - The others mean the checkout was left alone
      (C(dirty), C(ahead), C(diverged), C(blocked), C(other_branch), C(detached),
      C(other_remote), C(no_upstream), C(not_a_repository)).
  returned: always
  type: str
  sample: ahead
left_alone:
  description: Whether the checkout was left alone although it may differ from the remote.
  returned: always
  type: bool
  sample: true
msg:
  description: A sentence for the user that explains RV(status).
  returned: always
  type: str
  sample: 2 local commits are not on the remote; left alone.
repo:
  description: The O(repo) URL.
  returned: always
  type: str
  sample: git@github.com:fastai/fastbook.git
dest:
  description: The O(dest) path.
  returned: always
  type: str
  sample: /storage/git/fastbook
branch:
  description: Checked-out branch after the run; null for a detached HEAD, a missing checkout or a non-repository.
  returned: always
  type: str
  sample: master
before:
  description: Commit checked out before the run; null when there was no checkout.
  returned: always
  type: str
  sample: 3f8a1c0e4b2d9a7f6e5c4b3a2f1e0d9c8b7a6f5e
after:
  description: Commit checked out after the run; null when not known (a clone in check mode).
  returned: always
  type: str
  sample: 9c8b7a6f5e3f8a1c0e4b2d9a7f6e5c4b3a2f1e0d
remote_commit:
  description: Commit the remote branch points to; null when the remote was not asked.
  returned: always
  type: str
  sample: 9c8b7a6f5e3f8a1c0e4b2d9a7f6e5c4b3a2f1e0d
ahead:
  description: Number of local commits the remote branch does not have.
  returned: always
  type: int
  sample: 0
behind:
  description: Number of remote commits the checkout does not have; -1 when unknown (check mode without fetching).
  returned: always
  type: int
  sample: 3
dirty_files:
  description: Tracked files with local changes, as C(git status --porcelain) lines (at most 20).
  returned: always
  type: list
  elements: str
  sample: [" M README.md"]
"""

import os
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

_DIRTY_FILES_SHOWN = 20


class GitError(Exception):
    """A git command failed in a way the user must see."""


# Settings that keep a checkout (whose .git may have been written by anyone with access to
# the storage volume) from running code: no hooks, no fsmonitor, no credential helper or
# askpass program, no signature verification program, no alternate-refs command, only
# transports that run no local command. Command-line settings outrank every config file.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.askPass=",
    "credential.helper=",
    "core.pager=cat",
    "core.alternateRefsCommand=true",
    "merge.verifySignatures=false",
    "protocol.allow=never",
    "protocol.file.allow=always",
    "protocol.ssh.allow=always",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
)
# remote.<name>.uploadpack keeps the first value git reads, so only the option outranks a planted one.
UPLOAD_PACK = "--upload-pack=git-upload-pack"
FILTER_KEYS = ("clean", "smudge", "process")
# The only filter driver kept: git-lfs as `git lfs install` (with or without --skip-smudge) configures it.
LFS_SETTINGS = frozenset({
    ("clean", "git-lfs clean -- %f"), ("smudge", "git-lfs smudge -- %f"), ("process", "git-lfs filter-process"),
    ("smudge", "git-lfs smudge --skip -- %f"), ("process", "git-lfs filter-process --skip"),
    ("required", "true"), ("required", "false"),
})
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s'\"]*)@")


def _redact_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    if scheme.lower().rstrip(":/") in ("ssh", "git+ssh", "ssh+git") and ":" not in userinfo:
        return match.group(0)
    return f"{scheme}***@"


def redact(text: str) -> str:
    """Hide what a URL's user part can carry: a password, or (for HTTP and others) a token as user name."""
    return _USERINFO.sub(_redact_userinfo, text)


def url_secrets(url: str) -> list[str]:
    """The parts of URLs in `url` that redact() hides, to mask wherever Ansible prints the options."""
    return [m.group(2) for m in _USERINFO.finditer(url) if _redact_userinfo(m) != m.group(0) and m.group(2)]


class Git:
    """Runs git through AnsibleModule.run_command with a fixed environment and SAFE_CONFIG."""

    def __init__(self, module: AnsibleModule, executable: str, ssh_command: str) -> None:
        self.module = module
        self.executable = executable
        # Our ssh command replaces any core.sshCommand a checkout sets (plain ssh when none is given).
        ssh = ssh_command or "ssh"
        self.environ: dict[str, str] = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_SSH_COMMAND": ssh,
            "GIT_PAGER": "cat",
            "LC_ALL": "C",
            "LANG": "C",
        }
        self.config = [*SAFE_CONFIG, f"core.sshCommand={ssh}"]
        self._filters: dict[str, list[str]] = {}

    def _options(self, cwd: str | None, filters: bool = True) -> list[str]:
        options: list[str] = []
        for setting in self.config + (self._filter_overrides(cwd) if filters else []):
            options += ["-c", setting]
        return options

    def _filter_overrides(self, cwd: str | None) -> list[str]:
        """Empty every filter driver git would read here (any config scope), so a checkout or merge runs none.

        A checkout's attributes pick the driver and a config file on shared storage can
        define it; only git-lfs's own commands, as `git lfs install` writes them, are kept."""
        key = cwd or ""
        if key not in self._filters:
            self._filters[key] = []
            command = [self.executable, *self._options(None, filters=False), *(["-C", cwd] if cwd else []),
                       "config", "--includes", "--get-regexp", r"^filter\."]
            _rc, out, _err = self.module.run_command(command, environ_update=self.environ)
            drivers: dict[str, set[tuple[str, str]]] = {}
            for line in out.splitlines():
                name, _space, value = line.partition(" ")
                if name.count(".") >= 2:
                    driver, setting = name.rsplit(".", 1)
                    drivers.setdefault(driver, set()).add((setting, value.strip()))
            unsafe = sorted(driver for driver, settings in drivers.items()
                            if not (driver == "filter.lfs" and settings <= LFS_SETTINGS))
            self._filters[key] = [f"{driver}.{setting}=" for driver in unsafe for setting in FILTER_KEYS] + \
                [f"{driver}.required=false" for driver in unsafe]
        return self._filters[key]

    def run(self, args: list[str], cwd: str | None = None) -> tuple[int, str, str]:
        """Run git with args; return (rc, stdout, stderr)."""
        command = [self.executable, *self._options(cwd)]
        if cwd is not None:
            command += ["-C", cwd]
        rc, out, err = self.module.run_command(command + args, environ_update=self.environ)
        return rc, out, err

    def check(self, args: list[str], cwd: str | None, what: str) -> str:
        """Run git and return stdout, or raise GitError naming what failed (credentials in URLs hidden)."""
        rc, out, err = self.run(args, cwd)
        if rc != 0:
            raise GitError(redact(f"{what} failed (git {' '.join(args)}, exit {rc}): {err.strip() or out.strip()}"))
        return out


def new_result(repo: str, dest: str) -> dict[str, Any]:
    """The result skeleton, with every documented key present."""
    return {
        "changed": False,
        "status": "current",
        "left_alone": False,
        "msg": "",
        "repo": repo,
        "dest": dest,
        "branch": None,
        "before": None,
        "after": None,
        "remote_commit": None,
        "ahead": 0,
        "behind": 0,
        "dirty_files": [],
    }


def leave_alone(result: dict[str, Any], status: str, msg: str) -> dict[str, Any]:
    """Mark the checkout as left alone, with a reason."""
    result.update(status=status, left_alone=True, msg=msg, after=result["before"])
    return result


def is_empty_dir(path: str) -> bool:
    """True when path is a directory without entries."""
    return os.path.isdir(path) and not os.listdir(path)


def is_checkout_root(git: Git, dest: str) -> bool:
    """True when dest is the top level of a git work tree (not a folder inside another one)."""
    rc, out, _err = git.run(["rev-parse", "--show-toplevel"], cwd=dest)
    return rc == 0 and os.path.realpath(out.strip()) == os.path.realpath(dest)


def clone(git: Git, params: dict[str, Any], check_mode: bool, result: dict[str, Any]) -> dict[str, Any]:
    """Clone into an absent or empty dest."""
    result.update(changed=True, status="cloned")
    if check_mode:
        result["msg"] = "Would clone the repository."
        return result
    args = ["clone", "--quiet", "--origin", params["remote"]]
    if params["version"]:
        args += ["--branch", params["version"]]
    git.check(args + ["--", params["repo"], params["dest"]], None, f"Cloning {params['repo']} into {params['dest']}")
    result["after"] = git.check(["rev-parse", "HEAD"], params["dest"], "Reading the cloned commit").strip()
    result["branch"] = current_branch(git, params["dest"])
    result["msg"] = "Cloned the repository."
    return result


def current_branch(git: Git, dest: str) -> str | None:
    """Name of the checked-out branch, or None for a detached HEAD."""
    rc, out, _err = git.run(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=dest)
    return out.strip() if rc == 0 else None


def remote_url(git: Git, dest: str, remote: str) -> str | None:
    """URL configured for the remote, or None when the remote does not exist."""
    rc, out, _err = git.run(["config", "--get", f"remote.{remote}.url"], cwd=dest)
    return out.strip() if rc == 0 else None


def effective_url(git: Git, remote: str, cwd: str) -> str:
    """The URL git would really fetch from, after url.*.insteadOf rewriting (run in `cwd`)."""
    return git.check(["ls-remote", "--get-url", remote], cwd, "Reading the remote URL").strip()


def same_url(left: str, right: str) -> bool:
    """Compare two remote URLs, ignoring a trailing slash."""
    return left.rstrip("/") == right.rstrip("/")


def dirty_files(git: Git, dest: str) -> list[str]:
    """Tracked files with changes (staged or not); untracked files do not count."""
    out = git.check(["status", "--porcelain", "--untracked-files=no"], dest, "Reading the work tree status")
    return [line for line in out.splitlines() if line.strip()]


def has_commit(git: Git, dest: str, ref: str) -> bool:
    """True when ref names a commit available in the local repository."""
    rc, _out, _err = git.run(["cat-file", "-e", f"{ref}^{{commit}}"], cwd=dest)
    return rc == 0


def count_ahead_behind(git: Git, dest: str, other: str) -> tuple[int, int]:
    """(commits only in HEAD, commits only in other)."""
    out = git.check(["rev-list", "--left-right", "--count", f"HEAD...{other}"], dest, "Comparing with the remote")
    ahead, behind = out.split()
    return int(ahead), int(behind)


def remote_commit(git: Git, dest: str, remote: str, branch: str) -> str | None:
    """Commit the remote branch points to, asked from the remote itself; None when it has no such branch."""
    out = git.check(["ls-remote", UPLOAD_PACK, "--heads", remote, f"refs/heads/{branch}"], dest, f"Asking remote {remote} for {branch}")
    for line in out.splitlines():
        sha, _tab, ref = line.partition("\t")
        if ref.strip() == f"refs/heads/{branch}":
            return sha.strip()
    return None


def ahead_of_tracking(git: Git, dest: str, remote: str, branch: str) -> int:
    """Local commits not in the remote-tracking branch (0 when there is none); needs no network."""
    tracking = f"refs/remotes/{remote}/{branch}"
    if not has_commit(git, dest, tracking):
        return 0
    return count_ahead_behind(git, dest, tracking)[0]


def plural(count: int, word: str) -> str:
    """'1 commit', '2 commits'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def update(git: Git, params: dict[str, Any], check_mode: bool, result: dict[str, Any]) -> dict[str, Any]:
    """Fast-forward an existing checkout, or explain why it is left alone."""
    dest, remote = params["dest"], params["remote"]
    result["before"] = git.check(["rev-parse", "HEAD"], dest, "Reading the checked-out commit").strip()
    url = remote_url(git, dest, remote)
    if url is None or not same_url(url, params["repo"]):
        return leave_alone(result, "other_remote", redact(f"Remote {remote} is {url!r}, not {params['repo']!r}; left alone."))
    fetched_from = effective_url(git, remote, dest)
    if not same_url(fetched_from, effective_url(git, params["repo"], "/")):
        return leave_alone(result, "other_remote", redact(
            f"The checkout's config rewrites remote {remote} to {fetched_from!r} (url.*.insteadOf); left alone."))
    branch = current_branch(git, dest)
    result["branch"] = branch
    if branch is None:
        return leave_alone(result, "detached", "HEAD is detached (no branch checked out); left alone.")
    if params["version"] and branch != params["version"]:
        return leave_alone(result, "other_branch", f"Branch {branch!r} is checked out, not {params['version']!r}; left alone.")
    changes = dirty_files(git, dest)
    if changes:
        result["dirty_files"] = changes[:_DIRTY_FILES_SHOWN]
        result["ahead"] = ahead_of_tracking(git, dest, remote, branch)
        return leave_alone(result, "dirty", f"{plural(len(changes), 'tracked file')} with local changes; left alone.")

    upstream = remote_commit(git, dest, remote, branch)
    result["remote_commit"] = upstream
    if upstream is None:
        return leave_alone(result, "no_upstream", f"Remote {remote} has no branch {branch!r}; left alone.")
    if upstream == result["before"]:
        result.update(after=upstream, msg="Already up to date.")
        return result
    if not has_commit(git, dest, upstream):
        if check_mode:
            return predict_unfetched(git, params, branch, result)
        git.check(["fetch", UPLOAD_PACK, "--quiet", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"], dest, f"Fetching {branch} from {remote}")
    ahead, behind = count_ahead_behind(git, dest, upstream)
    result.update(ahead=ahead, behind=behind)
    if ahead and behind:
        return leave_alone(result, "diverged", f"History diverged: {plural(ahead, 'local commit')} and {plural(behind, 'remote commit')}; left alone.")
    if ahead:
        return leave_alone(result, "ahead", f"{plural(ahead, 'local commit')} not on the remote; left alone.")
    if not behind:
        result.update(after=result["before"], msg="Already up to date.")
        return result
    return fast_forward(git, dest, upstream, check_mode, result)


def predict_unfetched(git: Git, params: dict[str, Any], branch: str, result: dict[str, Any]) -> dict[str, Any]:
    """Check mode, when the remote's new commits are not available locally: predict from the tracking branch."""
    ahead = ahead_of_tracking(git, params["dest"], params["remote"], branch)
    result.update(ahead=ahead, behind=-1)
    if ahead:
        return leave_alone(result, "diverged", f"The remote has new commits, and {plural(ahead, 'local commit')} not on it; would be left alone.")
    result.update(changed=True, status="updated", after=result["remote_commit"], msg="Would fetch and fast-forward.")
    return result


def fast_forward(git: Git, dest: str, upstream: str, check_mode: bool, result: dict[str, Any]) -> dict[str, Any]:
    """Merge upstream with --ff-only; a refusal (say, an untracked file in the way) leaves the checkout alone."""
    if check_mode:
        result.update(changed=True, status="updated", after=upstream, msg=f"Would fast-forward by {plural(result['behind'], 'commit')}.")
        return result
    rc, out, err = git.run(["merge", "--ff-only", "--quiet", upstream], cwd=dest)
    if rc != 0:
        reason = (err.strip() or out.strip()).splitlines()
        return leave_alone(result, "blocked", f"git refused to fast-forward ({' '.join(reason)[:300]}); left alone.")
    result["after"] = git.check(["rev-parse", "HEAD"], dest, "Reading the updated commit").strip()
    result.update(changed=True, status="updated", msg=f"Fast-forwarded by {plural(result['behind'], 'commit')}.")
    return result


def sync(git: Git, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Clone, update, or leave the checkout alone; return the module result."""
    dest = params["dest"]
    result = new_result(params["repo"], dest)
    if not os.path.lexists(dest) or is_empty_dir(dest):
        return clone(git, params, check_mode, result)
    if not os.path.isdir(dest) or not is_checkout_root(git, dest):
        return leave_alone(result, "not_a_repository", "The path exists and is not the top of a git checkout; left alone.")
    return update(git, params, check_mode, result)


ARGUMENT_SPEC: dict[str, Any] = {
    "repo": {"type": "str", "required": True},
    "dest": {"type": "path", "required": True},
    "version": {"type": "str"},
    "remote": {"type": "str", "default": "origin"},
    "ssh_command": {"type": "str", "default": ""},
    "git_executable": {"type": "path"},
}


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    executable = module.params["git_executable"] or module.get_bin_path("git", required=True)
    # Whatever Ansible prints about this task (the options included) masks a URL's credentials.
    module.no_log_values.update(url_secrets(module.params["repo"]))
    git = Git(module, executable, module.params["ssh_command"])
    try:
        result = sync(git, module.params, module.check_mode)
    except GitError as error:
        module.fail_json(msg=str(error), repo=redact(module.params["repo"]), dest=module.params["dest"])
    result["repo"] = redact(result["repo"])
    if result["left_alone"]:
        module.warn(redact(f"{result['dest']}: {result['msg']}"))
    if result["changed"] and module._diff:
        result["diff"] = {
            "before_header": result["dest"],
            "after_header": result["dest"],
            "before": f"{result['before'] or '(no checkout)'}\n",
            "after": f"{result['after'] or '(new clone)'}\n",
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
