from __future__ import annotations

import pytest

from tests.helpers import FINBENCH


@pytest.fixture(scope="session")
def finbench_store(tmp_path_factory):
    """A store holding the FinBench SF0.01 snapshot (skipped when shared/ is absent)."""
    if not FINBENCH.exists():
        pytest.skip(f"FinBench data not found at {FINBENCH}")
    from flowgraph.ingest.finbench import read_finbench
    from flowgraph.ingest.load import ingest_frames
    from flowgraph.store.embedded import Store

    store = Store.init(tmp_path_factory.mktemp("finbench") / "store")
    ingest_frames(store, read_finbench(FINBENCH))
    return store


@pytest.fixture(scope="session")
def scored_sample(tmp_path_factory):
    """The bundled sample ingested and scored (--all as of its last day). Read-only: tests
    that write copy it with :func:`copy_store`."""
    from flowgraph.core.resources import samples_dir
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.rules.batch import last_data_day, score_days
    from flowgraph.rules.pack import load_pack
    from flowgraph.store.embedded import Store

    store = Store.init(tmp_path_factory.mktemp("scored-sample") / "store")
    ingest_paths(store, [samples_dir()])
    score_days(store, [last_data_day(store)], load_pack(), every=True)
    return store
