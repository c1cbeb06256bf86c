"""The package's layout: no import cycles between mupc's modules, and the command line's
diagnostics callable from Python."""

import ast
from pathlib import Path

import mupc

PACKAGE = Path(mupc.__file__).resolve().parent
# The lead is untangling this pair (issue 18); any other cycle fails.
KNOWN = {frozenset({"mupc._energy", "mupc._network.base"})}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom, modules: set[str]) -> set[str]:
    """What `from base import a, b` runs: the submodules `base.a`, `base.b` where they are
    modules, and `base` itself for names it defines (importing a submodule runs its parent
    packages first, which is no cycle: Python finds them in `sys.modules`)."""
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    names = {f"{base}.{alias.name}" for alias in node.names}
    return {name if name in modules else base for name in names}


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The mupc modules `path` imports, at module level or inside functions (a lazy import
    in a cycle still ties the two modules together)."""
    name = _module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(_resolve(name, path.name == "__init__.py", node, modules))
    return {module for module in found if module in modules and module != name}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: _imports(path, modules) for name, path in paths.items()}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_mupc_has_no_import_cycles():
    cycles = [c for c in _cycles(_graph()) if frozenset(c) not in KNOWN]
    assert cycles == [], cycles


def test_the_split_run_modules_are_small():
    """`mupc/experiments/_run.py` was 700 lines; its seams are modules of their own."""
    folder = PACKAGE / "experiments"
    for name in ("_run", "_output", "_loop", "_divergence", "_run_data"):
        lines = (folder / f"{name}.py").read_text().count("\n")
        assert lines < 400, (name, lines)


def test_the_commands_only_parse_arguments():
    """The diagnostics' grids, rows and figures live in the library, not the CLI module."""
    source = (PACKAGE / "_commands" / "diagnose.py").read_text()
    assert "write_csv" not in source and "subplots" not in source and "jax" not in source
    assert source.count("\n") < 300
    for name in ("diagnose_hessian", "diagnose_coords", "diagnose_theory", "diagnose_signal"):
        assert callable(getattr(mupc.experiments, name))
