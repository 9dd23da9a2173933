"""Helpers shared by the test suite: where the shared data lives, store copies."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout


def _find_shared() -> Path:
    """../shared beside the checkout (CI clones main with shared/ beside it)."""
    for base in Path(__file__).resolve().parents:
        if (base / "shared" / "DESIGN.md").exists():
            return base / "shared"
    return ROOT.parent / "shared"


SHARED = _find_shared()
FINBENCH = SHARED / "finbench-sf0.01" / "snapshot"
CODECRAFT = SHARED / "codecraft2020"


def copy_store(store, dest: Path):
    """A private copy of a store folder (index and alerts included)."""
    from flowgraph.store.embedded import Store

    shutil.copytree(store.root, dest)
    return Store.open(dest)


def fast_runner():
    """A typer CliRunner that builds the click command of the flowgraph app once (typer
    rebuilds it on every invoke, ~60 ms): for tests that run the CLI hundreds of times."""
    import typer
    from typer.testing import CliRunner

    from flowgraph.cli import app

    command = typer.main.get_command(app)

    class _Runner(CliRunner):
        def invoke(self, _app, *args, **kwargs):
            import typer.testing as tt

            original = tt._get_command
            tt._get_command = lambda a: command if a is app else original(a)
            try:
                return super().invoke(_app, *args, **kwargs)
            finally:
                tt._get_command = original

    return _Runner()
