"""The committed ``cogment_gym/_proto`` must be exactly what ``scripts/generate_protos.py`` writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.network  # the first run installs the pinned generator from the package registry
def test_generated_code_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, (
        "cogment_gym/_proto is stale; run `python scripts/generate_protos.py`\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
