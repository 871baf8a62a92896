"""Architecture checks over the source (ast only): import cycles, SDK imports, sizes.

Every import counts, at module level, inside functions and under `if TYPE_CHECKING:`:
a lazy or type-only import still makes two modules depend on each other (the cycles #13
names were all of that kind: bootstrap <-> embedders.process, kafka_broker <->
kafka_install, stores <-> the store modules), so the graph checked is the design's, not
only what runs at import. `import a.b.c` is an edge to `a.b.c` only, not to the parent
packages' `__init__` (ours are one docstring each).

Sizes: a function counts from its `def` to its last line, docstring included, nested
functions with their parent; a module counts all its lines.

Each allow-list names today's offenders, which #13 is splitting or moving: a new offender
fails its test; an entry that no longer offends is reported as a warning (while #13 lands
in several hands), and should be deleted so the lists only shrink.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kura_stream", "consumers", "tui")

MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400

# Network and model SDKs: only kura_stream/adapters/ may import them (HOUSE_STYLE.md).
SDKS = frozenset(
    {
        "aiokafka",
        "faststream",
        "httpx",
        "datasets",
        "instructor",
        "llama_cpp",
        "model2vec",
        "onnxruntime",
        "openai",
        "qdrant_client",
        "qdrant_edge",
        "tokenizers",
        "uvicorn",
    }
)
# consumers/ holds the entry points: FastStream apps, and `serve`, which runs them beside the
# HTTP API under uvicorn. Their frameworks are not SDKs to hide; aiokafka still is.
ALLOWED_SDKS = {"consumers": frozenset({"faststream", "uvicorn"})}
# Folders that must stay SDK-free (module-name prefixes).
SDK_FREE = ("kura_stream.stages", "kura_stream.service", "consumers")

# Today's offenders, each being fixed in #13. Remove an entry when its fix lands.
_SPLIT = "being split in #13"
SDK_ALLOWED: dict[tuple[str, str], str] = {}
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {
    "kura_stream.stages.name_phrases:rank_phrases": _SPLIT,
}
LONG_MODULES_ALLOWED: dict[str, str] = {}
CYCLES_ALLOWED: dict[frozenset[str], str] = {
    # Kura's drop-in API: Conversation.from_hf_dataset & co. (types.py) load through the
    # loaders, which build Conversations (and scrub through privacy, which reads types).
    # Breaking it means moving those classmethods' bodies out of types.py (not in this change).
    frozenset(
        {
            "kura_stream.loaders.base",
            "kura_stream.loaders.claude",
            "kura_stream.loaders.containers",
            "kura_stream.loaders.hf",
            "kura_stream.loaders.kura",
            "kura_stream.loaders.kura_api",
            "kura_stream.privacy",
            "kura_stream.types",
        }
    ): "Kura's Conversation.from_* classmethods; types.py is outside this change",
}


@dataclass
class Module:
    """One parsed source module and the imports found in it."""

    name: str
    path: Path
    tree: ast.Module
    lines: int
    imports: set[str] = field(default_factory=set)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_import_nodes(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(module: Module, node: ast.Import | ast.ImportFrom, known: set[str]) -> Iterator[str]:
    """Yield the full names a statement imports (submodules where `from x import sub`)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.name.split(".")
        if module.path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base]) if base else ".".join(package)
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in known else base


@cache
def _modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            name = _module_name(path)
            tree = ast.parse(text, filename=str(path))
            modules[name] = Module(name, path, tree, len(text.splitlines()))
    known = set(modules)
    for module in modules.values():
        for node in _all_import_nodes(module.tree):
            module.imports.update(_targets(module, node, known))
    return modules


def import_graph() -> dict[str, list[str]]:
    """Each module's imports of our own modules."""
    modules = _modules()
    return {name: sorted(m.imports & modules.keys() - {name}) for name, m in modules.items()}


def cycles(graph: Mapping[str, Collection[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def sdk_imports() -> set[tuple[str, str]]:
    """(module, sdk) for every SDK import in the folders that must stay SDK-free."""
    found: set[tuple[str, str]] = set()
    for name, module in _modules().items():
        if not name.startswith(SDK_FREE):
            continue
        allowed = ALLOWED_SDKS.get(name.split(".")[0], frozenset())
        for target in module.imports:
            top = target.split(".")[0]
            if top in SDKS and top not in allowed:
                found.add((name, top))
    return found


def _functions(
    body: list[ast.stmt], prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method, nested ones included."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
            yield from _functions(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _functions([child], prefix)


def long_functions() -> dict[str, int]:
    """`module:qualname` -> lines (def to last line, docstring included) over the limit."""
    found: dict[str, int] = {}
    for name, module in _modules().items():
        for qualname, fn in _functions(module.tree.body):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found[f"{name}:{qualname}"] = length
    return found


def long_modules() -> dict[str, int]:
    """Modules over the line limit."""
    return {n: m.lines for n, m in _modules().items() if m.lines > MAX_MODULE_LINES}


def _check(found: Collection[object], allowed: Mapping[Any, str]) -> None:
    new = sorted(map(str, set(found) - allowed.keys()))
    stale = sorted(map(str, allowed.keys() - set(found)))
    assert not new, f"new offenders (fix them; do not add them to the allow-list): {new}"
    if stale:
        # While #13 is under way a fix must not break the build of whoever lands it; once the
        # lists are empty, make this an assertion so they can only shrink.
        warnings.warn(f"fixed, so remove from the allow-list: {stale}", stacklevel=2)


def test_sources_are_found() -> None:
    modules = _modules()
    assert "kura_stream.bootstrap" in modules
    assert "kura_stream.stages.hierarchy" in modules
    assert any(name.startswith("consumers.") for name in modules)


def test_cycle_finder_finds_cycles_and_only_them() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["d"]}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_relative_and_submodule_imports_resolve() -> None:
    imports = _modules()["kura_stream.adapters.embedders.process"].imports
    assert "kura_stream.adapters.embedders.factory" in imports  # imported inside a function
    assert "kura_stream.adapters.embedders" not in imports


def test_no_import_cycle() -> None:
    _check(set(cycles(import_graph())), CYCLES_ALLOWED)


def test_no_sdk_in_stages_service_consumers() -> None:
    _check(sdk_imports(), SDK_ALLOWED)


def test_no_long_function() -> None:
    _check(set(long_functions()), LONG_FUNCTIONS_ALLOWED)


def test_no_long_module() -> None:
    _check(set(long_modules()), LONG_MODULES_ALLOWED)
