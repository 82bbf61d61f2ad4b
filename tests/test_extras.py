"""cogment_gym.extras in this interpreter (every extra installed): what is no missing extra, and
the messages; tests/cli/test_missing_extras.py hides packages in child interpreters."""

from __future__ import annotations

import pytest

from cogment_gym.errors import CogmentGymError, MissingExtraError
from cogment_gym.extras import EXTRAS, install_hint, missing_extra, missing_for_source, require


@pytest.mark.parametrize("source", ["CartPole-v1", "gymnasium.envs.classic_control", "pettingzoo.classic.connect_four_v3",
                                    "pettingzoo.classic.connect_four_v99", "pettingzoo.nosuchfamily.game_v0"])
def test_installed_packages_and_typos_are_no_missing_extra(source: str) -> None:
    assert missing_for_source(source) is None


def test_require_imports_what_is_there() -> None:
    assert require("pettingzoo.classic", "a test").__name__ == "pettingzoo.classic"


def test_the_error_names_the_extra_and_is_an_import_error() -> None:
    err = missing_extra("stable_baselines3", "training", ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert isinstance(err, (MissingExtraError, CogmentGymError, ImportError))
    assert err.extra == "sb3" and err.name == "torch"
    assert str(err) == "training needs Stable-Baselines3 with its dependencies ('torch' is not installed): pip install 'cogment-gym[sb3]'"
    broken = missing_extra("ray", "RLlib", ImportError("cannot import name 'x' from 'ray.tune'"))
    assert "whose import failed (cannot import name 'x' from 'ray.tune')" in str(broken)


def test_every_extra_named_is_one_of_pyproject() -> None:
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    named = {extra for extra, _ in EXTRAS.values()}
    # Minari's extra comes with the Minari export; until then it is the one not in pyproject.
    assert named - set(extras) <= {"minari"}
    assert install_hint("pettingzoo") == "pip install 'cogment-gym[pettingzoo]'"
