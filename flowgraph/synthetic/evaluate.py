"""Detection quality on labelled data (``flowgraph generate`` output with labels.parquet).

Ingests the data into a store, scores every disbursement as of the last day with data,
and compares the alerts (rule kinds) with the labels:

- per typology: cases, cases whose disbursement got an alert of the expected rule kind
  (recall), the alerts raised on its cases by kind and the share of them that are correct
  (precision), and, for a look-alike, the alerts of the kind it imitates (must be 0);
- per rule kind: alerts, how many are on cases of its typology, on cases whose own
  transactions show its pattern (the label's ``also_rules``: a flow-back chain whose first
  hop is most of the loan the next morning is also a large outflow to a new counterparty),
  on other cases, on look-alikes and on the rest of the bank (ordinary loans), and the
  precision: correct alerts / all alerts.

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
    labels = pl.read_parquet(labels_path)
    for col, empty in (("lookalike_of", pl.lit(None, pl.Utf8)), ("also_rules", pl.lit([], pl.List(pl.Utf8)))):
        if col not in labels.columns:  # labels of an older generator
            labels = labels.with_columns(empty.alias(col))
    labels = labels.select("case_id", "typology", "disbursement_id", "expected_rule", "lookalike_of", "also_rules")
    # an alert is correct on a case whose typology is its kind or whose own transactions show its pattern
    labels = labels.with_columns(
        pl.concat_list(pl.col("also_rules"), pl.concat_list(pl.col("expected_rule"))).list.drop_nulls().alias("correct"))
    fired = alerts.group_by("disbursement_id").agg(pl.col("kind").alias("kinds"))
    cases = labels.join(fired, on="disbursement_id", how="left").with_columns(pl.col("kinds").fill_null([]))
    typologies = []
    for (typ,), part in cases.group_by("typology", maintain_order=True):
        expected, lookalike = part["expected_rule"][0], part["lookalike_of"][0]
        n = part.height
        hit = part.filter(pl.col("kinds").list.contains(expected)).height if expected else None
        kinds = part.select(pl.col("kinds").explode().drop_nulls().value_counts(sort=True))
        by_kind = {r["kinds"]["kinds"]: r["kinds"]["count"] for r in kinds.iter_rows(named=True)}
        raised = sum(by_kind.values())
        right = sum(len(set(k) & set(c)) for k, c in part.select("kinds", "correct").iter_rows())
        typologies.append(
            {
                "typology": typ, "expected_rule": expected, "lookalike_of": lookalike, "cases": n, "detected": hit,
                "recall": round(hit / n, 4) if expected and n else None,
                "alerts": raised, "alerts_by_kind": dict(sorted(by_kind.items())),
                "precision": round(right / raised, 4) if raised else None,
                "lookalike_alerts": part.filter(pl.col("kinds").list.contains(lookalike)).height if lookalike else None,
                "flow_back_alerts": part.filter(pl.col("kinds").list.contains("flow_back")).height,
            }
        )  # fmt: skip
    typologies.sort(key=lambda r: (r["expected_rule"] is None, r["typology"]))
    labelled = alerts.join(labels.select("disbursement_id", "expected_rule", "lookalike_of", "correct"),
                           on="disbursement_id", how="left")  # fmt: skip
    negative_ids = labels.filter(pl.col("expected_rule").is_null())["disbursement_id"].implode()
    rules = []
    for (kind,), part in labelled.group_by("kind", maintain_order=True):
        expected = part.filter(pl.col("expected_rule") == kind).height
        right = part.filter(pl.col("correct").list.contains(kind)).height
        rules.append(
            {
                "kind": kind, "alerts": part.height, "on_expected_cases": expected,
                "on_cases_showing_it": right - expected,
                "on_other_cases": part.filter(pl.col("expected_rule").is_not_null() & ~pl.col("correct").list.contains(kind)).height,
                "on_negative_controls": part.filter(pl.col("disbursement_id").is_in(negative_ids)
                                                    & ~pl.col("correct").list.contains(kind)).height,
                "on_unlabelled": part.filter(pl.col("expected_rule").is_null() & pl.col("lookalike_of").is_null()
                                             & ~pl.col("disbursement_id").is_in(labels["disbursement_id"].implode())).height,
                "precision": round(right / part.height, 4) if part.height else None,
            }
        )  # fmt: skip
    rules.sort(key=lambda r: r["kind"])
    labelled_kinds = {t["expected_rule"] for t in typologies if t["expected_rule"]}
    for kind in sorted(labelled_kinds - {r["kind"] for r in rules}):  # labelled but never raised
        rules.append({"kind": kind, "alerts": 0, "on_expected_cases": 0, "on_cases_showing_it": 0, "on_other_cases": 0,
                      "on_negative_controls": 0, "on_unlabelled": 0, "precision": None})  # fmt: skip
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
        "precision_min": min((r["precision"] for r in rules if r["precision"] is not None), default=None),
        "lookalike_typologies": len(negatives),
        "lookalike_alerts": sum(t["lookalike_alerts"] or 0 for t in negatives),
        "flow_back_on_negatives": sum(t["flow_back_alerts"] for t in negatives),
    }
