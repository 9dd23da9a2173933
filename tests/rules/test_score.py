"""The nightly batch: idempotent partitions, as-of cut-off, alerts output."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.resources import samples_dir
from flowgraph.core.values import format_date
from flowgraph.ingest.load import ingest_paths
from flowgraph.rules.alerts import partition_dir, read_alerts
from flowgraph.rules.batch import score_days
from flowgraph.rules.pack import load_pack
from flowgraph.store.embedded import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The sample store, scored on the day of one injected flow-back case's return."""
    store = Store.init(tmp_path_factory.mktemp("score") / "store")
    ingest_paths(store, [samples_dir()])
    labels = pl.read_parquet(samples_dir() / "labels.parquet")
    case = labels.filter(pl.col("typology") == "fb_direct").row(0, named=True)
    tx = store.read("transactions").filter(pl.col("tx_id").is_in(case["tx_ids"]))
    last_day = date.fromisoformat(format_date(tx["ts"].max()))
    return store, case, last_day


def test_score_writes_partition_and_is_byte_identical(scored):
    store, case, day = scored
    pack = load_pack()
    summary = score_days(store, [day], pack)
    part = partition_dir(store, day)
    first = {p.name: p.read_bytes() for p in part.iterdir()}
    assert set(first) == {"alerts.parquet", "_manifest.json"}
    score_days(store, [day], pack)
    assert {p.name: p.read_bytes() for p in part.iterdir()} == first
    alerts = read_alerts(store, day)
    assert summary["alerts"] == alerts.height > 0
    fb = alerts.filter((pl.col("disbursement_id") == case["disbursement_id"]) & (pl.col("kind") == "flow_back"))
    assert fb.height == 1
    a = fb.row(0, named=True)
    assert a["ruleset_hash"] == pack.hash and a["as_of"] == day.isoformat()
    assert a["returned_amount"] == case["returned_amount"] and a["level"] in ("high", "medium", "low")
    assert "came back to" in a["reasons"][0]
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["snapshot_id"] == store.snapshot_id and manifest["alerts"] == alerts.height


def test_as_of_cutoff_ignores_later_days(scored):
    """Scored the day before the return, the case has no flow-back alert yet."""
    store, case, day = scored
    prev = date.fromordinal(day.toordinal() - 1)
    score_days(store, [prev], load_pack())
    alerts = read_alerts(store, prev)
    hit = alerts.filter((pl.col("disbursement_id") == case["disbursement_id"]) & (pl.col("kind") == "flow_back"))
    assert hit.height == 0


def test_score_cli_json_fail_on_and_alerts(scored, tmp_path):
    store, case, day = scored
    base = ["--store", str(store.root)]
    r = runner.invoke(app, [*base, "score", "--date", day.isoformat(), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert set(summary) == {"disbursements", "alerts", "by_rule", "by_level", "suppressed", "seconds"}
    assert summary["alerts"] == sum(summary["by_rule"].values()) == sum(summary["by_level"].values())
    r = runner.invoke(app, [*base, "score", "--date", day.isoformat(), "--fail-on", "low", "--json"])
    assert r.exit_code == 1
    runs = (store.root / "runs.jsonl").read_text().splitlines()
    assert len(runs) >= 2 and json.loads(runs[-1])["dates"] == [day.isoformat()]
    r = runner.invoke(app, [*base, "alerts", "--loan", case["loan_id"], "--json"])
    assert r.exit_code == 0
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    fb = next(x for x in rows if x["kind"] == "flow_back")
    for k in ("alert_id", "loan_id", "disbursement_id", "borrower_id", "rule_id", "rule_version", "ruleset_hash",
              "score", "level", "returned_amount", "return_ratio", "first_return_ts", "path_count", "min_hops",
              "truncated", "paths", "reasons", "as_of", "scored_at"):
        assert k in fb
    hop = fb["paths"][0]["hops"][0]
    assert set(hop) == {"tx_id", "src", "dst", "ts", "amount"} and hop["ts"].endswith("Z")
    assert {h["tx_id"] for p in fb["paths"] for h in p["hops"]} <= set(case["tx_ids"])
    r = runner.invoke(app, [*base, "alerts", "--level", "high"])
    assert r.exit_code == 0
    r = runner.invoke(app, [*base, "score"])
    assert r.exit_code == 2


def test_evaluate_sample_recall_and_negatives(tmp_path):
    from flowgraph.synthetic.evaluate import evaluate

    res = evaluate(samples_dir(), store_dir=tmp_path / "s")
    assert res["recall_min"] == 1.0
    assert res["flow_back_on_negatives"] == 0
    fb = next(r for r in res["rules"] if r["kind"] == "flow_back")
    assert fb["precision"] == 1.0 and fb["on_unlabelled"] == 0
    assert {t["typology"] for t in res["typologies"]} >= {"fb_direct", "neg_late_return", "transfer_cycle"}
