#!/usr/bin/env python3
"""What TLS, mTLS and a token cost a CartPole trial, against plaintext measured in the same run.

    python benchmarks/security.py                 # all cases
    python benchmarks/security.py --seconds 8     # longer, steadier

Cases (the balancing policy of cartpole_grpc.py: 500-step episodes unless capped):

  (e)  CogmentEnv("CartPole-v1") embedded: no port, nothing to secure; the reference for "the
       embedded default did not get slower" (compare with cartpole_grpc.py's (e) on main);
  (p)  CogmentEnv(environment=...) with ``cogment-gym serve`` in another process, plaintext, TCP;
  (k)  the same service with a token (a server interceptor: paid once per RPC, a trial's stream
       opens one RPC), the client sending it;
  (s)  the same with TLS (server certificate checked by the client);
  (m)  the same with mTLS and a token (client certificate checked by the service);
  each also with 20-step trials (max_steps=19, suffix "20"), where per-trial costs (an RPC, its
  token check) weigh 25 times more.

Every service runs ``--no-local-socket`` (TCP for all: a TLS service offers no unix socket).
Cases are measured in interleaved rounds so that load from elsewhere hits them alike; the
ratios compare each secured case with its plaintext twin. Certificates are made at start with
``cryptography`` (the test extra), as the tests make them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import statistics  # noqa: E402

import time  # noqa: E402

from cartpole_grpc import Case, EnvCase, Sample  # noqa: E402
from common import ROOT, child, cpu_seconds, machine_facts  # noqa: E402

SHORT = 20


class CpuCase(EnvCase):
    """An EnvCase that also adds up the CPU time of this process and of its env process: CPU
    per step moves less than steps/s when other work shares the machine."""

    def __init__(self, key: str, name: str, env: object, server_pid: int | None = None) -> None:
        super().__init__(key, name, env)  # type: ignore[arg-type]
        self.server_pid = server_pid
        self.client_cpu = self.server_cpu = 0.0
        self.counting = False

    def measure(self, seconds: float) -> Sample:
        client, server = time.process_time(), cpu_seconds(self.server_pid) if self.server_pid else 0.0
        sample = super().measure(seconds)
        if self.counting:
            self.client_cpu += time.process_time() - client
            if self.server_pid:
                self.server_cpu += cpu_seconds(self.server_pid) - server
        return sample


def print_table(cases: dict[str, Case]) -> None:
    width = max(len(case.name) for case in cases.values())
    print(f"{'case':<{width}}  {'steps/s':>9}  {'spread':>6}  {'episodes/s':>10}  {'us/step':>8}  {'client CPU':>10}  {'env CPU':>8}")
    for case in cases.values():
        total = case.total
        median = statistics.median(case.rounds)
        spread = f"{(max(case.rounds) - min(case.rounds)) / median:6.0%}" if median else f"{'-':>6}"
        episodes = f"{total.episodes / total.seconds:10.1f}" if total.episodes else f"{'-':>10}"
        cpu = f"{'-':>10}  {'-':>8}"
        if isinstance(case, CpuCase) and total.steps:
            server = f"{1e6 * case.server_cpu / total.steps:8.0f}" if case.server_pid else f"{'-':>8}"
            cpu = f"{1e6 * case.client_cpu / total.steps:10.0f}  {server}"
        print(f"{case.name:<{width}}  {total.rate:9,.0f}  {spread}  {episodes}  {1e6 / total.rate:8.1f}  {cpu}")
    print("spread: (max-min)/median of the per-round rates; client CPU: us of this process per step (all its threads); "
          "env CPU: us of the env process per step.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured wall time per case, all rounds together (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved slices per case (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured wall time per case first (default: %(default)s)")
    args = parser.parse_args(argv)

    import gymnasium as gym

    from cogment_gym import CogmentEnv
    from cogment_gym.protocol.security import Security

    sys.path.insert(0, str(ROOT))
    from tests.pki import make_pki

    for line in machine_facts():
        print(line)
    print(f"settings: {args.seconds:g} s per case in {args.rounds} interleaved rounds, after {args.warmup:g} s warmup; TCP 127.0.0.1\n",
          flush=True)
    cases: dict[str, Case] = {}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="cogment-gym-bench-") as tmp:
        pki = make_pki(Path(tmp))
        token_file = Path(tmp) / "token"
        token_file.write_text("s3cret\n")
        server_tls = ["--private-key", str(pki.server_key), "--cert-chain", str(pki.server_cert)]
        kinds: dict[str, tuple[str, list[str], Security | None]] = {
            "p": ("plaintext", [], None),
            "k": ("token", ["--token-file", str(token_file)], Security(token="s3cret")),
            "s": ("TLS", server_tls, pki.client(cert=False)),
            "m": ("mTLS + token", [*server_tls, "--root-cert", str(pki.ca), "--token-file", str(token_file)], pki.client(token="s3cret")),
        }

        def add(case: Case) -> None:
            stack.callback(case.close)
            cases[case.key] = case

        add(EnvCase("a", "(a)  gymnasium CartPole, stepped directly", gym.make("CartPole-v1")))
        add(CpuCase("e", "(e)  CogmentEnv('CartPole-v1') embedded", CogmentEnv("CartPole-v1")))
        for key, (name, flags, security) in kinds.items():
            serve = [sys.executable, "-m", "cogment_gym.cli", "serve", "CartPole-v1", "--port", "0", "--no-local-socket", *flags]
            service = stack.enter_context(child(serve))
            endpoint, pid = service.line.rsplit(" ", 1)[-1], service.popen.pid
            add(CpuCase(key, f"({key})  env process, {name}, 500-step episodes", CogmentEnv(environment=endpoint, security=security), pid))
            add(CpuCase(f"{key}20", f"({key}20) same, {SHORT}-step trials",
                        CogmentEnv(environment=endpoint, security=security, max_steps=SHORT - 1), pid))

        for case in cases.values():
            case.measure(args.warmup)
            if isinstance(case, CpuCase):
                case.counting = True
        for _ in range(args.rounds):
            for case in cases.values():
                sample = case.measure(args.seconds / args.rounds)
                case.total.add(sample)
                case.rounds.append(sample.rate)

    print_table(cases)
    print("ratios against plaintext (same run; rounds: min..max of the per-round ratios):")
    for key in ("k", "s", "m"):
        for suffix in ("", "20"):
            top, bottom = cases[key + suffix], cases["p" + suffix]
            per_round = [t / b for t, b in zip(top.rounds, bottom.rounds)]
            cpu = ""
            if isinstance(top, CpuCase) and isinstance(bottom, CpuCase) and top.total.steps and bottom.total.steps:
                per_step = [(c.client_cpu + c.server_cpu) / c.total.steps for c in (top, bottom)]
                cpu = f"   CPU per step (both processes) {per_step[0] / per_step[1]:.2f}x"
            print(f"  ({key}{suffix})/(p{suffix}) = {top.total.rate / bottom.total.rate:.2f}   (rounds {min(per_round):.2f}..{max(per_round):.2f}){cpu}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
