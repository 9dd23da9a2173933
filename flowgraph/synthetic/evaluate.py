"""Detection quality on labelled data (``flowgraph generate`` output with labels.parquet).

Ingests the data into a store, scores every disbursement as of the last day with data,
and compares the alerts (rule kinds) with the labels:

- per typology: cases, cases whose disbursement got an alert of the expected rule kind
  (recall), and, for negative controls, flow-back alerts raised on them (must be 0);
- per rule kind: alerts, alerts on cases labelled with that kind, precision.

Other rules may legitimately fire on a case of another typology (a flow-back chain is
often also a rapid pass-through), so precision counts an alert as expected only on cases
labelled with its kind, and reports the rest as ``other``.

The store the evaluation builds (a full copy of the data) lives in ``store_dir`` when one
is given and is kept there; otherwise it lives in a temporary folder that is removed
before :func:`evaluate` returns or raises.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from flowgraph.core.errors import InvalidValue
from flowgraph.ingest.load import ingest_paths
from flowgraph.rules.alerts import read_alerts
from flowgraph.rules.batch import last_data_day, score_days
from flowgraph.rules.model import RulePack
from flowgraph.rules.pack import load_pack
from flowgraph.store.embedded import Store


def evaluate(data_dir: str | Path, pack: RulePack | None = None, store_dir: str | Path | None = None, threads: int | None = None) -> dict:
    """Score ``data_dir`` and measure recall/precision against its ``labels.parquet``.

    ``store_dir``: where to build (or reuse) the store, which is kept; ``None``: a
    temporary store, removed afterwards (the result's ``store`` is then ``None``).
    """
    data_dir = Path(data_dir)
    labels_path = data_dir / "labels.parquet"
    if not labels_path.exists():
        raise InvalidValue(f"{labels_path}: no labels (generate the data with `flowgraph generate`)")
    pack = pack or load_pack()
    if store_dir is not None:
        return _evaluate(data_dir, labels_path, pack, Path(store_dir), threads)
    with tempfile.TemporaryDirectory(prefix="flowgraph-eval-") as tmp:
        return _evaluate(data_dir, labels_path, pack, Path(tmp) / "store", threads) | {"store": None}


def _evaluate(data_dir: Path, labels_path: Path, pack: RulePack, root: Path, threads: int | None) -> dict:
    store = Store.init(root)
    ingest = ingest_paths(store, [data_dir])
    day = last_data_day(store)
    summary = score_days(store, [day], pack, threads=threads, every=True)
    alerts = read_alerts(store, day).select("disbursement_id", "kind").unique()
    labels = pl.read_parquet(labels_path).select("case_id", "typology", "disbursement_id", "expected_rule")
    fired = alerts.group_by("disbursement_id").agg(pl.col("kind").alias("kinds"))
    cases = labels.join(fired, on="disbursement_id", how="left").with_columns(pl.col("kinds").fill_null([]))
    typologies = []
    for (typ,), part in cases.group_by("typology", maintain_order=True):
        expected = part["expected_rule"][0]
        n = part.height
        hit = part.filter(pl.col("kinds").list.contains(expected)).height if expected else None
        fb = part.filter(pl.col("kinds").list.contains("flow_back")).height
        typologies.append(
            {
                "typology": typ, "expected_rule": expected, "cases": n, "detected": hit,
                "recall": round(hit / n, 4) if expected and n else None,
                "flow_back_alerts": fb,
            }
        )
    typologies.sort(key=lambda r: (r["expected_rule"] is None, r["typology"]))
    labelled = alerts.join(labels.select("disbursement_id", "expected_rule"), on="disbursement_id", how="left")
    rules = []
    for (kind,), part in labelled.group_by("kind", maintain_order=True):
        expected = part.filter(pl.col("expected_rule") == kind).height
        rules.append(
            {
                "kind": kind, "alerts": part.height, "on_expected_cases": expected,
                "on_other_cases": part.filter(pl.col("expected_rule").is_not_null() & (pl.col("expected_rule") != kind)).height,
                "on_negative_controls": part.filter(pl.col("disbursement_id").is_in(
                    labels.filter(pl.col("expected_rule").is_null())["disbursement_id"].implode())).height,
                "on_unlabelled": part.filter(~pl.col("disbursement_id").is_in(labels["disbursement_id"].implode())).height,
                "precision": round(expected / part.height, 4) if part.height else None,
            }
        )
    rules.sort(key=lambda r: r["kind"])
    negatives = [t for t in typologies if t["expected_rule"] is None]
    positives = [t for t in typologies if t["expected_rule"]]
    return {
        "data": str(data_dir),
        "store": str(root),
        "as_of": day.isoformat(),
        "transactions": ingest["tables"].get("transactions", {}).get("loaded", 0),
        "disbursements": summary["disbursements"],
        "alerts": summary["alerts"],
        "score_seconds": summary["seconds"],
        "typologies": typologies,
        "rules": rules,
        "recall_min": min((t["recall"] for t in positives), default=None),
        "flow_back_on_negatives": sum(t["flow_back_alerts"] for t in negatives),
    }
