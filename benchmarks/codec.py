"""Encode + decode rates of the cogment_gym codec, against a raw ``tobytes`` / ``np.frombuffer`` baseline.

Run: ``python benchmarks/codec.py`` (optionally ``--seconds 0.5`` per case).

For each space, three round trips of the same value are timed in the same run:

- ``codec``:    ``decode(space, encode(space, value))`` (validation included);
- ``codec+wire``: the same plus ``SerializeToString`` / ``parse_value``, which is what a real
  message goes through;
- ``baseline``: every numeric leaf through ``arr.tobytes()`` / ``np.frombuffer(...).reshape(...)``
  (and text through ``str.encode`` / ``bytes.decode``), no validation, no protobuf.

Rates are round trips per second (best of several batches); ``x baseline`` is how many times
slower than the baseline a round trip is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from gymnasium import spaces

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cogment_gym.codec import decode, encode, parse_value  # noqa: E402

TARGET_CASE = "uint8[84,84,3]"
TARGET_RATE = 100_000
BATCHES = 5


def _cases() -> dict[str, tuple[spaces.Space[Any], Any]]:
    nested = spaces.Dict(
        [
            ("pos", spaces.Box(-10.0, 10.0, (3,), np.float32)),
            ("img", spaces.Box(0, 255, (16, 16, 3), np.uint8)),
            ("flags", spaces.MultiBinary(4)),
            ("mode", spaces.Discrete(5)),
            ("text", spaces.Text(8)),
        ]
    )
    cases: dict[str, spaces.Space[Any]] = {
        "float32[4]": spaces.Box(-1.0, 1.0, (4,), np.float32),
        "uint8[84,84,3]": spaces.Box(0, 255, (84, 84, 3), np.uint8),
        "float32[1000]": spaces.Box(-1.0, 1.0, (1000,), np.float32),
        "nested Dict": nested,
    }
    out = {}
    for name, space in cases.items():
        space.seed(0)
        out[name] = (space, space.sample())
    return out


def _baseline(space: spaces.Space[Any], value: Any) -> Callable[[], Any]:
    """The same leaves through raw bytes: the floor any codec pays for copying the data."""
    if isinstance(space, spaces.Dict):
        parts = [_baseline(sub, value[key]) for key, sub in space.spaces.items()]
        return lambda: [part() for part in parts]
    if isinstance(space, spaces.Text):
        return lambda: value.encode().decode()
    array = np.asarray(value)
    dtype, shape = array.dtype, array.shape
    return lambda: np.frombuffer(array.tobytes(), dtype).reshape(shape)


def _rate(fn: Callable[[], Any], seconds: float) -> float:
    """Round trips per second: calibrate a batch to seconds / BATCHES, keep the fastest batch."""
    fn()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / BATCHES / 4:
            break
        n *= 4
    n = max(1, int(n * (seconds / BATCHES) / elapsed))
    best = float("inf")
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def run(seconds: float) -> bool:
    rows = []
    for name, (space, value) in _cases().items():
        def codec(space: spaces.Space[Any] = space, value: Any = value) -> Any:
            return decode(space, encode(space, value))

        def wire(space: spaces.Space[Any] = space, value: Any = value) -> Any:
            return decode(space, parse_value(encode(space, value).SerializeToString()))

        size = len(encode(space, value).SerializeToString())
        base = _rate(_baseline(space, value), seconds)
        rows.append((name, size, _rate(codec, seconds), _rate(wire, seconds), base))

    header = f"{'case':<16} {'bytes':>7} {'codec/s':>11} {'x base':>7} {'codec+wire/s':>13} {'x base':>7} {'baseline/s':>12}"
    print(header)
    print("-" * len(header))
    for name, size, codec_rate, wire_rate, base in rows:
        print(
            f"{name:<16} {size:>7} {codec_rate:>11,.0f} {base / codec_rate:>6.1f}x "
            f"{wire_rate:>13,.0f} {base / wire_rate:>6.1f}x {base:>12,.0f}"
        )
    target = next(r for r in rows if r[0] == TARGET_CASE)
    met = target[2] >= TARGET_RATE
    print()
    print(f"target: {TARGET_CASE} encode+decode >= {TARGET_RATE // 1000}k/s")
    print(
        f"  codec: {target[2]:,.0f}/s -> {'MET' if met else 'NOT MET'}"
        f"   (with SerializeToString/ParseFromString: {target[3]:,.0f}/s, "
        f"{'also met' if target[3] >= TARGET_RATE else 'not met'})"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time spent per measured case (default 0.5)")
    args = parser.parse_args()
    print(f"cogment_gym codec benchmark (numpy {np.__version__}, python {sys.version.split()[0]})\n")
    run(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
