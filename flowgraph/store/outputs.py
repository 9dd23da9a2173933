"""Where commands may write their outputs (``--out`` of evidence, report, cycles, exports).

An output folder is replaced whole (evidence bundles, Neo4j exports) or filled with files
(reports), so a wrong ``--out`` could destroy data. :func:`check_output_dir` refuses, saying
which rule was broken:

1. the store itself, or any folder or file inside a flowgraph store (the one in use or any
   other: a folder is a store when it holds a store manifest);
2. a folder that contains a flowgraph store (``--out ~`` with the store under it);
3. an existing file where a folder is wanted;
4. an existing, non-empty folder that is not a previous output of the same kind, recognised
   by its marker file (``manifest.json`` with the bundle format for evidence, ``report.json``
   for reports...). An empty folder is fine.

:func:`check_output_file` applies rule 1 to single files (``cycles --out``).

>>> import tempfile, pathlib
>>> from flowgraph.store.embedded import Store
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> s = Store.init(root / "store")
>>> check_output_dir(root / "bundle", "evidence bundle", lambda p: False, [s.root]).name
'bundle'
>>> check_output_dir(root / "store" / "alerts", "evidence bundle", lambda p: False, [s.root])
Traceback (most recent call last):
...
flowgraph.core.errors.UsageError: --out .../store/alerts is inside the flowgraph store .../store; write evidence bundles outside it
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from flowgraph.core.errors import UsageError
from flowgraph.store.embedded import FORMAT_VERSION, MANIFEST


def is_store(path: Path) -> bool:
    """True when ``path`` holds a flowgraph store manifest (format, snapshot_id, tables)."""
    try:
        m = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and m.get("format") == FORMAT_VERSION and "snapshot_id" in m and "tables" in m


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _enclosing_store(path: Path, stores: Iterable[Path]) -> Path | None:
    real = _real(path)
    for s in stores:
        rs = _real(s)
        if real == rs or rs in real.parents:
            return Path(s)
    for p in (real, *real.parents):
        if is_store(p):
            return p
    return None


def _contains_store(folder: Path, stores: Iterable[Path]) -> Path | None:
    real = _real(folder)
    for s in stores:
        if real in _real(s).parents:
            return Path(s)
    for manifest in _limited_walk(real):
        if is_store(manifest):
            return manifest
    return None


def _limited_walk(folder: Path, limit: int = 2000):
    """Folders under ``folder`` (breadth-first, at most ``limit``; symlinks not followed)."""
    queue, seen = [folder], 0
    while queue and seen < limit:
        cur = queue.pop(0)
        seen += 1
        yield cur
        try:
            queue.extend(sorted(p for p in cur.iterdir() if p.is_dir() and not p.is_symlink()))
        except OSError:
            continue


def check_output_dir(
    out_dir: str | os.PathLike, kind: str, is_previous: Callable[[Path], bool],
    stores: Iterable[str | os.PathLike] = (), option: str = "--out",
) -> Path:
    """``out_dir`` as a Path when a command may write its ``kind`` of output there; else
    :class:`UsageError` naming the rule broken (see the module docstring).

    ``is_previous(folder)`` recognises a previous output of the same kind; ``stores`` are
    the stores in use (also found without it when they hold a manifest).
    """
    out = Path(out_dir)
    stores = [Path(s) for s in stores]
    inside = _enclosing_store(out, stores)
    if inside is not None:
        raise UsageError(f"{option} {out} is inside the flowgraph store {inside};"
                         f" write {kind}s outside it")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UsageError(f"{option} {out} exists and is not a folder; give a new folder for the {kind}")
        holder = _contains_store(out, stores)
        if holder is not None:
            raise UsageError(f"{option} {out} contains the flowgraph store {holder};"
                             f" give a new folder for the {kind}")
        if any(out.iterdir()) and not is_previous(out):
            raise UsageError(f"{option} {out} is an existing folder that is not a previous {kind}"
                             f" (it would be replaced); give a new or empty folder")
    return out


#: the files `flowgraph report --out` writes (a folder holding only these is a previous report)
REPORT_FILES = frozenset({"report.csv", "report.xlsx", "report.html", "report.json"})


def is_report_dir(folder: Path) -> bool:
    """True when ``folder`` holds a previous portfolio report and nothing else."""
    names = {p.name for p in Path(folder).iterdir() if not p.name.startswith(".")}
    if not names or not names <= REPORT_FILES or "report.json" not in names:
        return False
    try:
        data = json.loads((Path(folder) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "groups" in data and "totals" in data


def check_report_dir(out_dir: str | os.PathLike, stores: Iterable[str | os.PathLike] = ()) -> Path:
    """:func:`check_output_dir` for ``report --out`` (call before writing the report)."""
    return check_output_dir(out_dir, "portfolio report", is_report_dir, stores)


def check_output_file(out_file: str | os.PathLike, stores: Iterable[str | os.PathLike] = (), option: str = "--out") -> Path:
    """``out_file`` as a Path unless it lies inside a flowgraph store or is a folder."""
    out = Path(out_file)
    inside = _enclosing_store(out, [Path(s) for s in stores])
    if inside is not None:
        raise UsageError(f"{option} {out} is inside the flowgraph store {inside}; write it outside")
    if out.is_dir():
        raise UsageError(f"{option} {out} is a folder; give a file name")
    return out


__all__ = ["is_store", "check_output_dir", "check_output_file", "check_report_dir", "is_report_dir", "REPORT_FILES"]
