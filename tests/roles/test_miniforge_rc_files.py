"""The miniforge role's shell init and teardown against conda's real rc-file edits (REAL-CONDA.md D3, D11, D13).

ansible-playbook runs the role's install and teardown task files on this machine
(local connection) against a stand-in Miniforge in a scratch directory. HOME and
ansible_facts['user_dir'] are a scratch home, so nothing of the host's own home is
read or written; ansible_facts['system'] says which OS the role believes it is on,
and STANDIN_PLATFORM=osx makes the stand-in's conda and mamba behave as on macOS.
What is asserted is the rc files' content and what a new login shell resolves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standin"))
from test_standin_installer import clean_env, install  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
CONDA_START = "# >>> conda initialize >>>"
MAMBA_START = "# >>> mamba initialize >>>"


def role(tmp_path: Path, home: Path, entry: str, extra: dict[str, Any], check: bool = False,
         **env: str) -> subprocess.CompletedProcess[str]:
    book = tmp_path / f"{entry}.yml"
    book.write_text(
        "---\n- name: Run the miniforge role's entry under test\n  hosts: localhost\n  gather_facts: false\n"
        "  tasks:\n"
        f"    - name: The {entry} tasks\n      ansible.builtin.include_role:\n        name: miniforge\n"
        f"        tasks_from: {entry}\n"
    )
    run_env = clean_env(home, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **env)
    argv = [PLAYBOOK, str(book), "-e", json.dumps(extra)] + (["--check"] if check else [])
    return subprocess.run(argv, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=600, check=False)


def recap_changed(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("localhost") and "changed=" in line)
    return int(line.split("changed=")[1].split()[0])


def facts(home: Path, system: str) -> dict[str, Any]:
    return {"user_dir": str(home), "system": system, "architecture": "x86_64", "env": {"HOME": str(home)}}


@pytest.fixture()
def scratch(tmp_path: Path) -> dict[str, Any]:
    home = tmp_path / "home"
    home.mkdir()
    prefix = tmp_path / "miniforge3"
    install(prefix, home)
    return {"home": home, "prefix": prefix, "tmp": tmp_path}


def blocks(text: str, start: str) -> list[str]:
    """Each block opened by START, as text."""
    found = []
    for part in text.split(start)[1:]:
        end = part.index("<<<\n") + 4
        found.append(start + part[:end])
    return found


def test_macos_default_shells_get_both_blocks_in_the_files_conda_chose(scratch: dict[str, Any]) -> None:
    """D3: on macOS bash's blocks go to ~/.bash_profile, and zsh (the login shell) is initialised by default."""
    home, prefix, tmp = scratch["home"], scratch["prefix"], scratch["tmp"]
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "ansible_facts": facts(home, "Darwin")}

    done = role(tmp, home, "install", extra, STANDIN_PLATFORM="osx")
    assert done.returncode == 0, done.stdout[-3000:]
    for name in (".bash_profile", ".zshrc"):
        text = (home / name).read_text()
        assert len(blocks(text, CONDA_START)) == 1, name
        assert len(blocks(text, MAMBA_START)) == 1, name
        assert f"'{prefix}/bin/mamba'" in text
    assert not (home / ".bashrc").exists()

    # A login bash (what Terminal starts for a bash user) has `mamba activate`.
    login = subprocess.run(["bash", "-lic", "mamba activate base && echo \"active:$CONDA_PREFIX\""],
                           env=clean_env(home, PATH="/usr/bin:/bin", STANDIN_PLATFORM="osx"),
                           capture_output=True, text=True, check=False)
    assert f"active:{prefix}" in login.stdout.splitlines(), login.stdout + login.stderr

    again = role(tmp, home, "install", extra, STANDIN_PLATFORM="osx")
    assert again.returncode == 0 and recap_changed(again.stdout) == 0, again.stdout[-3000:]

    gone = role(tmp, home, "teardown", dict(extra, miniforge_state="absent"), STANDIN_PLATFORM="osx")
    assert gone.returncode == 0, gone.stdout[-3000:]
    for name in (".bash_profile", ".zshrc"):
        text = (home / name).read_text()
        assert CONDA_START not in text and MAMBA_START not in text, name
    assert not prefix.exists()


def test_zsh_blocks_follow_zdotdir_like_conda(scratch: dict[str, Any]) -> None:
    """D3: conda writes $ZDOTDIR/.zshrc, mamba ignores ZDOTDIR; the role keeps both blocks where zsh reads them."""
    home, prefix, tmp = scratch["home"], scratch["prefix"], scratch["tmp"]
    zdot = tmp / "zdot"
    zdot.mkdir()
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "miniforge_shells": ["zsh"],
             "ansible_facts": facts(home, "Linux")}

    done = role(tmp, home, "install", extra, ZDOTDIR=str(zdot))
    assert done.returncode == 0, done.stdout[-3000:]
    text = (zdot / ".zshrc").read_text()
    assert len(blocks(text, CONDA_START)) == 1 and len(blocks(text, MAMBA_START)) == 1
    assert not (home / ".zshrc").exists()


USER_RC = (
    "export EDITOR=vi\n"
    "    source ~/venv/bin/activate\n"
    "# >>> conda initialize >>>\n"
    "# !! Contents within this block are managed by 'conda init' !!\n"
    "__conda_setup=\"$('/opt/conda/bin/conda' 'shell.bash' 'hook' 2> /dev/null)\"\n"
    "if [ $? -eq 0 ]; then\n"
    "    eval \"$__conda_setup\"\n"
    "else\n"
    "    if [ -f \"/opt/conda/etc/profile.d/conda.sh\" ]; then\n"
    "        . \"/opt/conda/etc/profile.d/conda.sh\"\n"
    "    else\n"
    "        export PATH=\"/opt/conda/bin:$PATH\"\n"
    "    fi\n"
    "fi\n"
    "unset __conda_setup\n"
    "# <<< conda initialize <<<\n"
    "alias ll='ls -l'\n"
)


def test_user_lines_and_another_installations_block_survive_init_and_teardown(scratch: dict[str, Any]) -> None:
    """D11: conda init comments out a user's venv activation and replaces every conda block; the role undoes that."""
    home, prefix, tmp = scratch["home"], scratch["prefix"], scratch["tmp"]
    bashrc = home / ".bashrc"
    bashrc.write_text(USER_RC)
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "ansible_facts": facts(home, "Linux")}

    done = role(tmp, home, "install", extra)
    assert done.returncode == 0, done.stdout[-3000:]
    text = bashrc.read_text()
    assert "\n    source ~/venv/bin/activate\n" in text
    assert "commented out by conda initialize" not in text
    conda_blocks = blocks(text, CONDA_START)
    assert len(conda_blocks) == 2
    assert "'/opt/conda/bin/conda'" in conda_blocks[0] and f"'{prefix}/bin/conda'" in conda_blocks[1]
    assert conda_blocks[0] in USER_RC
    assert len(blocks(text, MAMBA_START)) == 1

    again = role(tmp, home, "install", extra)
    assert again.returncode == 0 and recap_changed(again.stdout) == 0, again.stdout[-3000:]
    assert bashrc.read_text() == text
    checked = role(tmp, home, "install", extra, check=True)
    assert checked.returncode == 0 and recap_changed(checked.stdout) == 0, checked.stdout[-3000:]

    gone = role(tmp, home, "teardown", dict(extra, miniforge_state="absent"))
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert bashrc.read_text() == USER_RC


def test_teardown_keeps_lines_another_init_commented_and_restores_this_prefixs(scratch: dict[str, Any]) -> None:
    """D11: lines conda commented out for this prefix come back on teardown; other installations' stay as they were."""
    home, prefix, tmp = scratch["home"], scratch["prefix"], scratch["tmp"]
    bashrc = home / ".bashrc"
    own_line = f'export PATH="{prefix}/bin:$PATH"\n'
    theirs = "# . /opt/conda/etc/profile.d/conda.sh  # commented out by conda initialize\n"
    original = "export EDITOR=vi\n" + theirs + own_line
    bashrc.write_text(original)
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "ansible_facts": facts(home, "Linux")}

    done = role(tmp, home, "install", extra)
    assert done.returncode == 0, done.stdout[-3000:]
    text = bashrc.read_text()
    # The PATH line of this very prefix would set it up twice: conda comments it out, as it should.
    assert f'# export PATH="{prefix}/bin:$PATH"  # commented out by conda initialize\n' in text
    assert theirs in text

    gone = role(tmp, home, "teardown", dict(extra, miniforge_state="absent"))
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert bashrc.read_text() == original


def test_the_mamba_block_follows_an_empty_line(scratch: dict[str, Any]) -> None:
    """D13: like `mamba shell init`, the block is preceded by an empty line."""
    home, prefix, tmp = scratch["home"], scratch["prefix"], scratch["tmp"]
    # conda's block already in place (replaced where it is), then a user line at the end of the file.
    own_block = USER_RC[USER_RC.index(CONDA_START):USER_RC.index("alias ll")].replace("/opt/conda", str(prefix))
    (home / ".bashrc").write_text("export EDITOR=vi\n" + own_block + "alias ll='ls -l'\n")
    extra = {"miniforge_prefix": str(prefix), "miniforge_manage_condarc": False, "ansible_facts": facts(home, "Linux")}
    done = role(tmp, home, "install", extra)
    assert done.returncode == 0, done.stdout[-3000:]
    text = (home / ".bashrc").read_text()
    assert f"alias ll='ls -l'\n\n{MAMBA_START}\n" in text
