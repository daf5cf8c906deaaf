"""Unit tests of miniforge_shell_rc's rc-file repair: what real conda init breaks, put back (REAL-CONDA.md D11)."""

from __future__ import annotations

from ansible_collections.reforge.workstation.plugins.modules import miniforge_shell_rc as rc

PREFIX = "/home/u/miniforge3"
COMMENT = "  # commented out by conda initialize\n"


def block(prefix: str) -> str:
    return (
        "# >>> conda initialize >>>\n"
        f"__conda_setup=\"$('{prefix}/bin/conda' 'shell.bash' 'hook' 2> /dev/null)\"\n"
        f'    . "{prefix}/etc/profile.d/conda.sh"\n'
        "# <<< conda initialize <<<\n"
    )


MAMBA = (
    "# >>> mamba initialize >>>\n"
    f"export MAMBA_EXE='{PREFIX}/bin/mamba';\n"
    f"export MAMBA_ROOT_PREFIX='{PREFIX}';\n"
    "# <<< mamba initialize <<<\n"
)


def test_repair_restores_a_commented_user_line_and_appended_block_stays() -> None:
    before = "export A=1\n    source ~/venv/bin/activate\n"
    after = "export A=1\n# source ~/venv/bin/activate" + COMMENT + "\n" + block(PREFIX) + "\n"
    assert rc.repair(before, after, PREFIX) == before + "\n" + block(PREFIX) + "\n"


def test_repair_keeps_lines_that_set_up_this_prefix_commented() -> None:
    before = f'export PATH="{PREFIX}/bin:$PATH"\n'
    after = f'# export PATH="{PREFIX}/bin:$PATH"' + COMMENT + "\n" + block(PREFIX) + "\n"
    assert rc.repair(before, after, PREFIX) == after


def test_repair_puts_another_installations_block_back_before_ours() -> None:
    before = "export A=1\n" + block("/opt/conda") + "echo end\n"
    after = "export A=1\n" + block(PREFIX) + "echo end\n"
    assert rc.repair(before, after, PREFIX) == "export A=1\n" + block("/opt/conda") + block(PREFIX) + "echo end\n"
    # Converged: ours is replaced in place, theirs stays, nothing is added.
    converged = rc.repair(before, after, PREFIX)
    again = "export A=1\n" + block(PREFIX) + block(PREFIX) + "echo end\n"
    assert rc.repair(converged, again, PREFIX) == converged


def test_remove_blocks_takes_only_this_prefixs_and_the_empty_lines_init_added() -> None:
    user = "export A=1\n"
    content = user + block("/opt/conda") + "\n" + block(PREFIX) + "\n\n" + MAMBA
    removed = rc.remove_blocks(rc.remove_blocks(content, rc.MAMBA_MARKERS, PREFIX), rc.CONDA_MARKERS, PREFIX)
    assert removed == user + block("/opt/conda")
    appended = user + "\n" + block(PREFIX) + "\n"
    assert rc.remove_blocks(appended, rc.CONDA_MARKERS, PREFIX) == user


def test_uncomment_only_lines_conda_commented_for_this_prefix() -> None:
    theirs = "# . /opt/conda/etc/profile.d/conda.sh" + COMMENT
    ours = f'# export PATH="{PREFIX}/bin:$PATH"' + COMMENT
    assert rc.uncomment(theirs + ours, PREFIX) == theirs + f'export PATH="{PREFIX}/bin:$PATH"\n'
