"""Real git repositories for the git_checkout tests: a bare remote and a clone that pushes to it.

Shared by the module's unit tests (tests/unit/plugins/modules/test_git_checkout.py)
and the git_repos role's test through ansible-playbook (tests/roles).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# A fixed committer and no user or system git config, for the tests and for the module.
GIT_TEST_ENV = {
    "GIT_AUTHOR_NAME": "reforge test",
    "GIT_AUTHOR_EMAIL": "test@reforge.invalid",
    "GIT_COMMITTER_NAME": "reforge test",
    "GIT_COMMITTER_EMAIL": "test@reforge.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git; return stdout, failing the test on error."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


class Remote:
    """A bare repository and a clone that pushes new commits to it."""

    def __init__(self, root: Path, name: str = "project") -> None:
        self.url = str(root / "server" / f"{name}.git")
        self.pusher = root / "pusher" / name
        git("init", "--quiet", "--bare", "--initial-branch=main", self.url)
        git("clone", "--quiet", self.url, str(self.pusher))
        git("checkout", "--quiet", "-b", "main", cwd=self.pusher)
        self.push("README.md", "# project\n")

    def push(self, name: str, content: str, branch: str = "main") -> str:
        """Commit a file and push it to branch; return the commit."""
        (self.pusher / name).write_text(content, encoding="utf-8")
        git("add", name, cwd=self.pusher)
        git("commit", "--quiet", "-m", f"Add {name}", cwd=self.pusher)
        git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=self.pusher)
        return git("rev-parse", "HEAD", cwd=self.pusher)
