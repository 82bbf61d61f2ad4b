"""What a fresh clone relies on: README's first two commands, .ci/run running the second one, and
pyproject's extras (``test`` pulls the others by reference), classifiers and URLs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.match(r"# [^\n]+\n\n```sh\n(.*?)\n```", readme, re.S)
    assert block, "README.md must start with its title and a sh block of commands"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines()]


def test_readme_starts_with_the_demo_and_the_test_commands() -> None:
    demo, test = _readme_commands()
    assert demo.startswith("pip install -e . && cogment-gym run CartPole-v1")
    assert test == "pip install -e '.[test]' && python -m pytest"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert script[-1] == _readme_commands()[1]


def test_the_test_extra_references_the_other_extras_instead_of_repeating_them() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    name = project["name"]
    references = [r for r in extras["test"] if r.startswith(f"{name}[")]
    assert len(references) == 1, extras["test"]
    referenced = set(references[0][len(name) + 1 : references[0].index("]")].split(","))
    assert referenced == set(extras) - {"test"}, referenced  # every other extra, each defined
    repeated = {r for extra in referenced for r in extras[extra]} & set(extras["test"])
    assert not repeated, repeated
    assert not any(r.startswith(("torch", "ray", "pettingzoo", "stable-baselines3")) for r in extras["test"])


def test_classifiers_and_urls() -> None:
    project = _project()
    classifiers = project["classifiers"]
    assert "License :: OSI Approved :: Apache Software License" in classifiers
    assert "Typing :: Typed" in classifiers and (ROOT / "cogment_gym" / "py.typed").exists()
    low = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert low and f"Programming Language :: Python :: 3.{low[1]}" in classifiers
    versions = sorted(int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert versions[0] == int(low[1]) and versions == list(range(versions[0], versions[-1] + 1))
    assert project["urls"] and all(url.startswith("https://") for url in project["urls"].values())


def test_readme_says_what_the_test_install_costs_and_names_the_extras() -> None:
    readme = (ROOT / "README.md").read_text()
    intro = readme[: readme.index("## What it is")]
    assert "torch" in intro and "Ray" in intro
    assert re.search(r"\d+ min", intro), "the install and suite times, measured"
    multi_agent = readme[readme.index("## Multi-agent"):readme.index("## Vector envs")]
    assert "pip install 'cogment-gym[pettingzoo]'" in multi_agent
    assert "cogment-gym run pettingzoo.classic.connect_four_v3" in multi_agent
