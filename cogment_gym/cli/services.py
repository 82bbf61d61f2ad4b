"""``cogment-gym services orchestrator | directory``: the spelling of Cogment's own CLI
(``cogment services orchestrator ...``), so that scripts and launchers written for it run with
``cogment-gym`` in its place. The same commands as ``cogment-gym orchestrator`` and
``cogment-gym directory``."""

from __future__ import annotations

from typing import Any

from cogment_gym.cli import directory, orchestrator

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    services = commands.add_parser("services", help="Cogment's spelling: services orchestrator | directory",
                                   description="The commands of 'cogment services', as 'cogment-gym orchestrator' and 'cogment-gym directory'.")
    inner = services.add_subparsers(title="services", metavar="SERVICE", required=True)
    orchestrator.add_parser(inner)
    directory.add_parser(inner)
