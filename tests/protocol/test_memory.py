"""protocol.memory: glibc's malloc settings for large messages, once per process, left alone
when the user says so. Each case runs in a fresh interpreter (the settings are per process)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = (
    "from cogment_gym.protocol import memory\n"
    "first = memory.keep_large_buffers()\n"
    "print(first, memory.keep_large_buffers(), memory.tuned())\n"
)


def _run(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k in ("COGMENT_GYM_MALLOC_TUNING", "GLIBC_TUNABLES"))}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_applied_once_on_glibc() -> None:
    assert _run() == "True True True"


def test_left_alone_when_turned_off() -> None:
    assert _run(COGMENT_GYM_MALLOC_TUNING="0") == "False False False"


@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "1000000"}, {"MALLOC_ARENA_MAX": "2"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}])
def test_left_alone_under_the_users_own_malloc_settings(env: dict[str, str]) -> None:
    assert _run(**env) == "False False False"
