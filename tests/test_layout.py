"""The tree keeps the shape issue 12 gave it: small modules in folders that say what they hold,
imports that only go down the layers, no circles, no long functions or long signatures."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "logroll"

# Lowest first: a module may import its own layer or a lower one (README, "How it works").
LAYERS = [
    {"errors", "faults", "dates", "units", "urls", "proc", "quote", "registry"},
    {"pipelines"},
    {"catalog", "storage", "engines", "events", "report", "config"},
    {"sinks"},
    {"stage", "discover", "build", "publish", "workspace", "overview"},
    {"runner", "streaming", "ingest"},
    {"api"},
    {"htmlreport", "demo", "cli"},
]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """logroll modules `name` imports, at any depth (function-level imports too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            # A module's own packages are imported before it anyway: not an edge.
            if t.startswith("logroll.") and t != name and not name.startswith(t + "."):
                found.add(t)
    return found


def layer(name: str) -> int:
    top = name.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_few_modules_at_the_top_and_none_large():
    mods = modules()
    top = [p for p in mods.values() if p.parent == ROOT and p.name != "__init__.py"]
    assert len(top) <= 20, sorted(p.name for p in top)
    large = {
        n: len(p.read_text().splitlines()) for n, p in mods.items() if len(p.read_text().splitlines()) > 500
    }
    assert large == {}


def test_functions_are_short_with_few_positional_parameters():
    long, wide = [], []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{name}.{node.name}")
                positional = [
                    a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")
                ]
                if len(positional) > 8:
                    wide.append(f"{name}.{node.name}")
    assert (long, wide) == ([], [])


def test_imports_only_go_down_the_layers_and_never_in_circles():
    mods = modules()
    graph = {n: imports(n, p, mods) for n, p in mods.items()}
    upward = [f"{n} -> {t}" for n, ts in graph.items() if n != "logroll" for t in ts if layer(t) > layer(n)]
    assert upward == []
    # Within a layer, no circle either (depth-first search for a back edge).
    state: dict[str, int] = {}

    def visit(n: str, trail: list[str]) -> list[str] | None:
        state[n] = 1
        for t in sorted(graph.get(n, ())):
            if state.get(t) == 1:
                return [*trail, n, t]
            if t not in state and (found := visit(t, [*trail, n])):
                return found
        state[n] = 2
        return None

    circles = [c for n in sorted(graph) if n not in state and (c := visit(n, []))]
    assert circles == []
