#!/usr/bin/env python3
"""What recording costs: trial-file records written per second, and embedded CartPole steps/s
without a datalog, with the in-process recorder, and with a datalog service over gRPC.

    python benchmarks/datalog.py [--seconds 3] [--samples 20000]

Prints records/s and MB/s for TrialFileWriter alone (CartPole-sized DatalogSamples), then
steps/s per case and the ratio to no recording, measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine_facts  # noqa: E402


def writer_rate(samples: int, directory: Path) -> tuple[float, float]:
    import cogment_gym
    from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2
    from cogment_gym.datastore import TrialFileWriter

    env = cogment_gym.CogmentEnv("CartPole-v1", datalog=directory / "probe")  # one real sample to size the records
    env.reset(seed=0)
    env.step(0)
    env.close()
    from cogment_gym.datastore import read_trial_file, trial_files

    body = read_trial_file(trial_files(directory / "probe")[0]).samples[-1]
    sample = datalog_pb2.DatalogSample.FromString(body)
    writer = TrialFileWriter(directory / "bench.cgtrial", "bench", "me", common_pb2.TrialParams())
    started = time.perf_counter()
    for _ in range(samples):
        writer.sample(sample)
    writer.close()
    seconds = time.perf_counter() - started
    return samples / seconds, samples * len(body) / seconds / 1e6


def steps_per_second(datalog: object, seconds: float) -> float:
    import cogment_gym

    env = cogment_gym.CogmentEnv("CartPole-v1", datalog=datalog)
    try:
        env.reset(seed=0)
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
        return steps / (time.perf_counter() - started)
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per case (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=20000, help="records for the writer alone (default: %(default)s)")
    args = parser.parse_args(argv)
    for line in machine_facts():
        print(line)
    from cogment_gym.cli.progress import Progress
    from cogment_gym.datastore import serve_datalog

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        records, megabytes = writer_rate(args.samples, directory)
        print(f"TrialFileWriter: {records:,.0f} records/s ({megabytes:.1f} MB/s), one os.write per record, fsync at the end")
        progress = Progress(3, sys.stderr, unit="cases", description="recording cost")
        rates = {}
        with serve_datalog(directory / "grpc") as server:
            for done, (name, datalog) in enumerate((("none", None), ("in-process recorder", directory / "local"),
                                                    ("datalog service (gRPC)", server.endpoint)), start=1):
                rates[name] = steps_per_second(datalog, args.seconds)
                progress.update(done, 0, 1.0)
        progress.close()
    base = rates["none"]
    for name, rate in rates.items():
        print(f"CogmentEnv('CartPole-v1') embedded, datalog {name:<24} {rate:9,.0f} steps/s  {rate / base:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
