from __future__ import annotations

from pathlib import Path

import pytest


def _find_shared() -> Path:
    """../shared beside the checkout (CI clones main with shared/ beside it)."""
    for base in Path(__file__).resolve().parents:
        if (base / "shared" / "DESIGN.md").exists():
            return base / "shared"
    return Path(__file__).resolve().parents[2] / "shared"


SHARED = _find_shared()
FINBENCH = SHARED / "finbench-sf0.01" / "snapshot"
CODECRAFT = SHARED / "codecraft2020"


@pytest.fixture(scope="session")
def finbench_store(tmp_path_factory):
    """A store holding the FinBench SF0.01 snapshot (skipped when shared/ is absent)."""
    if not FINBENCH.exists():
        pytest.skip(f"FinBench data not found at {FINBENCH}")
    from flowgraph.finbench import read_finbench
    from flowgraph.ingest import ingest_frames
    from flowgraph.store import Store

    store = Store.init(tmp_path_factory.mktemp("finbench") / "store")
    ingest_frames(store, read_finbench(FINBENCH))
    return store


@pytest.fixture(scope="session")
def scored_sample(tmp_path_factory):
    """The bundled sample ingested and scored (--all as of its last day). Read-only: tests
    that write copy it with :func:`copy_store`."""
    from flowgraph.batch import last_data_day, score_days
    from flowgraph.ingest import ingest_paths
    from flowgraph.resources import samples_dir
    from flowgraph.rulepack import load_pack
    from flowgraph.store import Store

    store = Store.init(tmp_path_factory.mktemp("scored-sample") / "store")
    ingest_paths(store, [samples_dir()])
    score_days(store, [last_data_day(store)], load_pack(), every=True)
    return store


def copy_store(store, dest: Path):
    """A private copy of a store folder (index and alerts included)."""
    import shutil

    from flowgraph.store import Store

    shutil.copytree(store.root, dest)
    return Store.open(dest)
