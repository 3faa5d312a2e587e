"""The package's import graph: every a2dkit import, top level and inside functions, points one way.

Layers, bottom to top: _env < diffusion < models < contract < convert < samplers, data < training,
eval, viz < grpo < tutorial < cli (and the entry modules: a2dkit/__init__, launch, __main__).
A module may import its own package or any lower layer, never a higher one nor a sibling package
of its own layer; no two modules import each other, directly or through others; and an a2dkit
import inside a function defers a heavy optional dependency (named in its comment) that the
imported module really imports at its top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "a2dkit"
LAYERS = {
    "_env": 0,
    "_version": 0,
    "diffusion": 1,
    "models": 2,
    "contract": 3,
    "convert": 4,
    "samplers": 5,
    "data": 5,
    "training": 6,
    "eval": 6,
    "viz": 6,
    "grpo": 7,
    "tutorial": 8,
    "cli": 9,
}
ENTRY = 10  # a2dkit/__init__.py, a2dkit/launch.py and every __main__.py: they may import anything
HEAVY = ("lm_eval", "trl", "peft", "gguf", "matplotlib", "ipywidgets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, imported: str | None) -> str:
    """The a2dkit module an import binds: ``from pkg import sub`` is the submodule ``pkg.sub``."""
    if imported is not None and f"{name}.{imported}" in MODULES:
        return f"{name}.{imported}"
    return name


def _imports(path: Path) -> list[tuple[str, bool, int, str]]:
    """(imported a2dkit module, deferred?, line, the line's text) for every a2dkit import."""
    text = path.read_text()
    lines = text.splitlines()
    found = []

    def visit(node: ast.AST, deferred: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "a2dkit":
                        found.append((alias.name, deferred, child.lineno, lines[child.lineno - 1]))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module.split(".")[0] == "a2dkit":
                    for alias in child.names:
                        target = _resolve(child.module, alias.name)
                        found.append((target, deferred, child.lineno, lines[child.lineno - 1]))
            visit(child, inner)

    visit(ast.parse(text), False)
    return found


def _layer(module: str, path: Path) -> int:
    parts = module.split(".")
    if module == "a2dkit" or module == "a2dkit.launch" or path.name == "__main__.py":
        return ENTRY
    return LAYERS[parts[1]]


def _package(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, *_ in _imports(path):
            if target != module and target in MODULES:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def _upward(module: str, path: Path) -> list[str]:
    own, bad = _layer(module, path), []
    for target, _, line, _ in _imports(path):
        if target not in MODULES or own == ENTRY:
            continue
        theirs = _layer(target, MODULES[target])
        same_package = _package(target) == _package(module)
        if theirs > own or (theirs == own and not same_package):
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    return bad


def test_every_module_has_a_layer():
    assert all(_layer(m, p) is not None for m, p in MODULES.items())
    assert len(MODULES) > 80  # the walk found the package (negative control for an empty glob)


def test_no_import_points_up_or_sideways():
    bad = [b for m, p in MODULES.items() for b in _upward(m, p)]
    assert not bad, "imports into a higher layer or a sibling package:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_deferred_imports_only_defer_heavy_optional_dependencies():
    bad = []
    for path in MODULES.values():
        for target, deferred, line, text in _imports(path):
            if not deferred:
                continue
            deps = [d for d in HEAVY if f"lazy: imports {d}" in text]
            top = {t.split(".")[0] for t in _top_level_imports(MODULES.get(target))}
            if not deps or not set(deps) <= top:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text.strip()}")
    assert not bad, "deferred a2dkit imports, no heavy dependency to defer:\n" + "\n".join(bad)


def _top_level_imports(path: Path | None, seen: set | None = None) -> set[str]:
    """Module names a file imports at its top level (and through its a2dkit imports' tops)."""
    seen = set() if seen is None else seen
    if path is None or path in seen:
        return set()
    seen.add(path)
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    for name in list(names):
        if name.startswith("a2dkit.") and name in MODULES:
            names |= _top_level_imports(MODULES[name], seen)
    return names


# --- negative controls: the checks catch what they are for ---------------------------------


def test_the_cycle_finder_finds_a_cycle_and_ignores_a_chain():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from a2dkit.cli.errors import run_cli\n", ["imports a2dkit.cli.errors"]),  # up
        ("from a2dkit.eval import elbo\n", ["imports a2dkit.eval.elbo"]),  # sibling package
        ("def f():\n    from a2dkit.grpo import tasks\n", ["imports a2dkit.grpo.tasks"]),
        ("from a2dkit.diffusion import losses\nfrom a2dkit.training import config\n", []),
    ],
)
def test_an_upward_or_sideways_import_is_reported(tmp_path, monkeypatch, source, expected):
    fake = PACKAGE / "training" / "fake_module_for_the_layer_test.py"
    monkeypatch.setitem(MODULES, "a2dkit.training.fake_module_for_the_layer_test", fake)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    found = _upward("a2dkit.training.fake_module_for_the_layer_test", fake)
    assert [f.split(" ", 1)[1] for f in found] == expected
