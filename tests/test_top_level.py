"""What README names is importable from the package root."""

from __future__ import annotations

import re
from pathlib import Path

import cogment_gym

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_facade_the_readme_names_is_exported_at_top_level() -> None:
    text = README.read_text()
    facades = set(re.findall(r"\b(Cogment(?:Env|VectorEnv|AECEnv|ParallelEnv))\b", text))
    assert {"CogmentEnv", "CogmentVectorEnv", "CogmentAECEnv", "CogmentParallelEnv"} <= facades
    for name in facades:
        assert name in cogment_gym.__all__
        assert getattr(cogment_gym, name) is getattr(cogment_gym.envs, name)
    from cogment_gym import CogmentVectorEnv  # the import users reported failing

    assert CogmentVectorEnv.__name__ == "CogmentVectorEnv"
