"""The conda-meta/history reader, as data: history text in, requested specs out.

The lines are the forms the real tools write (molecule/../REAL-CONDA.md, D1):
conda's ``str(MatchSpec)`` reprs, mamba 2's ``std::quoted`` lists with the same
spec on the update and remove lines of an update, conda's ``# neutered specs``,
and conda < 4.5's bare comma lists.
"""

from __future__ import annotations

from typing import Dict, List

import pytest

from ansible_collections.reforge.workstation.plugins.module_utils.conda_history import history_spec_name, parse_spec_list, read_history


def entry(*lines: str, stamp: str = "2026-11-30 10:00:00") -> str:
    return "\n".join(["==> %s <==" % stamp] + list(lines)) + "\n"


INSTALLER = entry(
    "# cmd: constructor /tmp/build --output-dir /tmp/out",
    "+conda-forge/linux-64::python-3.13.5-h1_cpython",
    "# update specs: ['python=3.13', \"conda[version='>=26.7.2']\", \"mamba[version='>=2.5.0']\", 'pip']",
)
INSTALLER_SPECS = {"python": "python=3.13", "conda": "conda[version='>=26.7.2']",
                   "mamba": "mamba[version='>=2.5.0']", "pip": "pip"}

CASES: Dict[str, tuple] = {
    "conda writes single-quoted reprs": (
        INSTALLER + entry(
            "# cmd: /home/u/miniforge3/bin/conda install -y fastai numpy<2",
            "# conda version: 26.7.2",
            "+conda-forge/noarch::fastai-2.7.18-pyhd8ed1ab_0",
            "# update specs: ['fastai', \"numpy[version='<2']\"]",
        ),
        {**INSTALLER_SPECS, "fastai": "fastai", "numpy": "numpy[version='<2']"},
    ),
    "mamba 2 writes double-quoted lists with escaped bracket quotes": (
        INSTALLER + entry(
            "# cmd: mamba install -y numpy>=1,<2",
            "# conda version: 3.8.0",
            "+conda-forge/linux-64::numpy-1.26.4-py313h1_0",
            '# update specs: ["numpy[version=\\">=1,<2\\"]"]',
        ),
        {**INSTALLER_SPECS, "numpy": 'numpy[version=">=1,<2"]'},
    ),
    "a spec conda cannot parse (conda/conda#15123) is still read": (
        entry(
            "# cmd: mamba install -y sam-2=1.0=cuda12*",
            '# update specs: ["sam-2[version=\\"=1.0\\",build=\\"cuda12*\\"]"]',
        ),
        {"sam-2": 'sam-2[version="=1.0",build="cuda12*"]'},
    ),
    "mamba's update puts the spec on the update and the remove line; it stays requested": (
        entry("# cmd: mamba install -y numpy<2", '# update specs: ["numpy[version=\\"<2\\"]"]')
        + entry(
            "# cmd: mamba update -y numpy",
            "# conda version: 3.8.0",
            "-conda-forge/linux-64::numpy-1.26.4-py313h1_0",
            "+conda-forge/linux-64::numpy-2.1.3-py313h1_0",
            '# update specs: ["numpy"]',
            '# remove specs: ["numpy"]',
        ),
        {"numpy": "numpy"},
    ),
    "a later removal cancels an earlier request": (
        entry("# cmd: conda install fastai sentencepiece", "# update specs: ['fastai', 'sentencepiece']")
        + entry("# cmd: mamba remove -y fastai", '# remove specs: ["fastai"]'),
        {"sentencepiece": "sentencepiece"},
    ),
    "a request after a removal brings the package back, at the end": (
        entry("# cmd: conda install a b", "# update specs: ['a', 'b']")
        + entry("# cmd: conda remove a", "# remove specs: ['a']")
        + entry("# cmd: conda install a=2", "# update specs: ['a=2']"),
        {"b": "b", "a": "a=2"},
    ),
    "neutered specs override the user's spec": (
        entry("# cmd: conda install numpy", "# update specs: ['numpy']")
        + entry(
            "# cmd: conda install scipy",
            "# update specs: ['scipy']",
            "# neutered specs: [\"numpy[version='>=1.26,<2.0a0']\"]",
        ),
        {"numpy": "numpy[version='>=1.26,<2.0a0']", "scipy": "scipy"},
    ),
    "conda < 4.5 wrote bare comma lists": (
        entry("# cmd: conda install ...",
              "# install specs: python>=3.5.1,jupyter >=1.0.0,<2.0,matplotlib >=1.5.1,<2.0"),
        {"python": "python>=3.5.1", "jupyter": "jupyter >=1.0.0,<2.0", "matplotlib": "matplotlib >=1.5.1,<2.0"},
    ),
    "channels and subdirs before :: are not part of the name": (
        entry("# cmd: conda install ...",
              "# update specs: ['conda-forge::numpy', \"conda-forge/linux-64::scipy[version='>=1']\"]"),
        {"numpy": "conda-forge::numpy", "scipy": "conda-forge/linux-64::scipy[version='>=1']"},
    ),
    "empty specs and specs ending in @ are dropped, as conda drops them": (
        entry("# cmd: conda install ...", "# update specs: ['', 'numpy', 'weird@']"),
        {"numpy": "numpy"},
    ),
    "an entry without a cmd line, and a comment before any header, still count": (
        "# update specs: ['early']\n" + entry("# update specs: ['late']"),
        {"early": "early", "late": "late"},
    ),
    "an unquoted list": (
        entry("# cmd: x", "# update specs: [numpy, scipy >=1,<2]"),
        {"numpy": "numpy", "scipy": "scipy >=1,<2"},
    ),
    "a spec line added by hand to an entry adds to it (conda would drop the first)": (
        entry("# cmd: x", "# update specs: ['a']", "# update specs: ['b']"),
        {"a": "a", "b": "b"},
    ),
    "an empty or missing history": ("", {}),
}


@pytest.mark.parametrize("text, expected", list(CASES.values()), ids=list(CASES))
def test_requested_specs(text: str, expected: Dict[str, str]) -> None:
    reading = read_history(text)
    assert reading.specs == expected
    assert list(reading.specs) == list(expected), "conda's order: first request first"
    assert reading.unparsed == []


def test_an_unreadable_line_is_reported_and_the_rest_is_read() -> None:
    broken = '# update specs: ["numpy'
    reading = read_history(
        entry("# cmd: x", "# update specs: ['fastai']")
        + entry("# cmd: y", broken)
        + entry("# cmd: z", "# update specs: ['[nonsense']")
        + entry("# cmd: w", "# update specs: ['sentencepiece']")
    )
    assert reading.specs == {"fastai": "fastai", "sentencepiece": "sentencepiece"}
    assert reading.unparsed == [broken, "# update specs: ['[nonsense']"]


SPEC_LISTS: Dict[str, tuple] = {
    "conda repr": ("['a', \"b[version='<2']\"]", ["a", "b[version='<2']"]),
    "mamba std::quoted": ('["a", "b[version=\\"<2\\"]"]', ["a", 'b[version="<2"]']),
    "an open quote": ('["a", "b', None),
    "no closing bracket": ('["a"', None),
    "empty list": ("[]", []),
    "nothing": ("", []),
    "bare commas": ("a >=1,<2,b", ["a >=1,<2", "b"]),
}


@pytest.mark.parametrize("payload, expected", list(SPEC_LISTS.values()), ids=list(SPEC_LISTS))
def test_spec_lists(payload: str, expected: List[str]) -> None:
    assert parse_spec_list(payload) == expected


@pytest.mark.parametrize("spec, name", [
    ("numpy", "numpy"),
    ("NumPy>=1,<2", "numpy"),
    ("numpy 1.26.*", "numpy"),
    ("numpy=1.26=py313*", "numpy"),
    ("numpy[version='<2']", "numpy"),
    ('numpy[version=">=1,<2"]', "numpy"),
    ("conda-forge::numpy", "numpy"),
    ("conda-forge/linux-64::numpy==1.26.4", "numpy"),
    ("https://conda.example.invalid/conda-forge::numpy", "numpy"),
    ("sam-2[version=\"=1.0\",build=\"cuda12*\"]", "sam-2"),
    ("[nonsense", ""),
])
def test_spec_names(spec: str, name: str) -> None:
    assert history_spec_name(spec) == name
