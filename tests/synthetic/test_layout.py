"""The synthetic package's modules import one way, in the order its docstring lists them.

Read from the modules' own import statements (in-function imports included), so a new
module has to take its place in ``ORDER`` and an import back up the list fails here.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import flowgraph.synthetic as pkg

ORDER = [
    "constants",
    "vocabulary",
    "world",
    "loans",
    "background",
    "cases",
    "cases.kit",
    "cases.flow_back",
    "cases.other_rules",
    "cases.negatives",
    "cases.lookalikes",
    "cases.registry",
    "traffic",
    "writer",
    "labels",
    "generate",
    "evaluate",
]
PREFIX = "flowgraph.synthetic."


def _modules() -> dict[str, Path]:
    root = Path(pkg.__file__).parent
    out = {}
    for m in pkgutil.walk_packages(pkg.__path__, prefix=PREFIX):
        parts = m.name[len(PREFIX):].split(".")
        path = root.joinpath(*parts, "__init__.py") if m.ispkg else root.joinpath(*parts).with_suffix(".py")
        out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (``from x import submodule`` resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            if n.startswith(PREFIX) and n[len(PREFIX):] in modules:
                found.add(n[len(PREFIX):])
    return found


def test_every_module_has_a_place():
    assert set(_modules()) == set(ORDER)


def test_imports_run_down_the_order():
    mods = _modules()
    rank = {m: i for i, m in enumerate(ORDER)}
    back = [(m, dep) for m, path in mods.items() for dep in _imports(path, set(mods))
            if rank[dep] >= rank[m]]  # fmt: skip
    assert back == []


def test_docstring_lists_the_modules_in_order():
    doc = pkg.__doc__
    pos = [doc.index(f"``{m.split('.')[0] + ('/' if m.startswith('cases') else '')}``")
           for m in ORDER]  # fmt: skip
    assert pos == sorted(pos)
