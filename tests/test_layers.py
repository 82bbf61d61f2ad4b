"""The package's import graph: imports point down the layers (_proto -> codec -> protocol ->
services -> facades -> integrations -> cli), and no module imports itself back through others,
lazily (inside a function) or not. Imports under ``if TYPE_CHECKING:`` are annotations only and
do not count."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cogment_gym"

# Lower numbers are lower layers; a module may import its own layer and those below.
LAYERS = {
    "cogment_gym._proto": 0, "cogment_gym._version": 0, "cogment_gym._grpc_tuning": 0, "cogment_gym.errors": 0,
    "cogment_gym.extras": 0,
    "cogment_gym.codec": 1, "cogment_gym.codec.payloads": 1,  # payloads: messages and spaces, never streams
    "cogment_gym.protocol": 2,
    "cogment_gym.adapters": 3, "cogment_gym.actors": 3, "cogment_gym.orchestrator": 3, "cogment_gym.directory": 3,
    "cogment_gym.datastore": 3,
    "cogment_gym.envs": 4,
    "cogment_gym.integrations": 5, "cogment_gym.testing": 5,
    "cogment_gym.cli": 6, "cogment_gym.__main__": 6, "cogment_gym": 6,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "_proto" in path.relative_to(PACKAGE).parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports at run time (anywhere in the file)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) not in type_only:
            found |= _imported(node, modules)
    return {name for name in found if name in modules or name.startswith("cogment_gym._proto")}


def _imported(node: ast.AST, modules: dict[str, Path]) -> set[str]:
    """What one statement imports of the package: ``from M import x`` names ``M.x`` when that
    is a module, else ``M``; ``import M`` names ``M`` (nothing for other statements)."""
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("cogment_gym"):
        module = node.module
        return {f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names}
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.startswith("cogment_gym")}
    return set()


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        imported = _imports(path, modules) - {name}
        if path.name == "__init__.py":  # a package re-exporting its own modules is no cycle
            imported = {m for m in imported if not m.startswith(name + ".")}
        graph[name] = imported
    return graph


def test_imports_point_down() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {imported} (layer {_layer(imported)})"
        for module, imports in sorted(_graph().items())
        for imported in sorted(imports)
        if _layer(imported) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = {name: {m for m in imports if not m.startswith("cogment_gym._proto")} for name, imports in _graph().items()}
    cycles = []
    for start in sorted(graph):
        # Depth-first search for a path back to ``start``.
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert cycles == []


def test_the_checks_see_lazy_imports(tmp_path: Path) -> None:
    """A function-level import counts (the cycles this file guards against were lazy ones); one
    under ``if TYPE_CHECKING:`` does not."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from cogment_gym.envs import CogmentEnv\n"
        "def f():\n    from cogment_gym.adapters import hosting\n"
    )
    assert _imports(probe, _modules()) == {"cogment_gym.adapters.hosting"}


def _module_level_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports when it is imported (its top-level statements, and
    the blocks of top-level ``if`` / ``try`` but ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    pending: list[ast.stmt] = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
        else:
            found |= _imported(node, modules)
    return {name for name in found if name in modules}


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return cycles


def test_no_cycles_in_what_importing_a_module_runs() -> None:
    """What Python runs on import, package ``__init__`` files included (a module importing a
    name from its own package runs that package's ``__init__``, which imports the module back:
    a cycle ``test_no_import_cycles`` does not count, as it lets a package re-export its modules;
    e.g. ``adapters/gym_trial.py`` taking ``Implementation`` from ``cogment_gym.adapters`` rather
    than from ``adapters/hosting.py`` fails here only)."""
    modules = _modules()
    graph = {name: _module_level_imports(path, modules) - {name} for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_cycle_through_a_package_init(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from cogment_gym.adapters import EnvHost\nif True:\n    import cogment_gym.codec\n")
    assert _module_level_imports(probe, _modules()) == {"cogment_gym.adapters", "cogment_gym.codec"}
    assert _cycles({"a": {"pkg"}, "pkg": {"a"}}) == ["a -> pkg -> a", "pkg -> a -> pkg"]


def _asserts(path: Path) -> list[str]:
    return [f"{path.name}:{node.lineno}" for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]


def test_no_assert_for_runtime_checks() -> None:
    """``python -O`` drops asserts: a runtime check raises a typed error (cogment_gym.errors),
    or narrows the type explicitly."""
    found = [where for path in sorted(_modules().values()) for where in _asserts(path)]
    assert found == []


def test_the_assert_check_sees_an_assert(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f(x):\n    if x:\n        assert x is not None, 'never'\n")
    assert _asserts(probe) == ["probe.py:3"]


# Internals: importable from their modules, never part of a package's public names.
INTERNALS = {
    "Trial": "cogment_gym.orchestrator.trial",
    "Connector": "cogment_gym.orchestrator.transports",
    "TrialConnection": "cogment_gym.envs.connection",
    "ClientSession": "cogment_gym.envs.session",
    "read_payload": "cogment_gym.codec.payloads.agents",
}


def test_public_packages_export_no_internals() -> None:
    import importlib

    packages = sorted(name for name, path in _modules().items() if path.name == "__init__.py")
    exported = {}
    for name in packages:
        try:
            package = importlib.import_module(name)
        except ImportError:  # an optional extra is not installed
            continue
        exported[name] = set(getattr(package, "__all__", ()))
    assert "cogment_gym.codec.payloads" in exported and "cogment_gym.orchestrator" in exported
    leaks = sorted(f"{package}.{internal}" for package, names in exported.items() for internal in INTERNALS if internal in names)
    assert leaks == []
    for internal, module in INTERNALS.items():
        assert hasattr(importlib.import_module(module), internal), f"{module}.{internal}"
