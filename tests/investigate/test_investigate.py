"""Investigation commands through the CLI runner: account, paths, history, loan."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.resources import samples_dir

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("inv") / "store"
    assert runner.invoke(app, ["--store", str(root), "ingest", str(samples_dir())]).exit_code == 0
    assert runner.invoke(app, ["--store", str(root), "score", "--all"]).exit_code == 0
    return root


@pytest.fixture(scope="module")
def case():
    labels = pl.read_parquet(samples_dir() / "labels.parquet")
    return labels.filter(pl.col("typology") == "fb_split_merge").row(0, named=True)


def cli_json(store, *args):
    r = runner.invoke(app, ["--store", str(store), *map(str, args), "--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_loan_picture_has_paths_repayments_alerts(store, case):
    data = cli_json(store, "loan", case["loan_id"])
    assert data["loan"]["loan_id"] == case["loan_id"]
    rec = data["disbursements"][0]
    assert rec["paths"] and {h["tx_id"] for p in rec["paths"] for h in p["hops"]} <= set(case["tx_ids"])
    assert any(a["kind"] == "flow_back" for a in data["alerts"])
    assert runner.invoke(app, ["--store", str(store), "loan", case["loan_id"]]).exit_code == 0
    assert runner.invoke(app, ["--store", str(store), "loan", "NOPE"]).exit_code == 1


def test_paths_between_two_accounts_match_the_trace(store, case):
    rec = cli_json(store, "trace", case["loan_id"])
    hops = rec["paths"][0]["hops"]
    mid = hops[1]["src"]  # an intermediary account
    data = cli_json(store, "paths", hops[0]["src"], mid, "--since", rec["ts"])
    got = [[h["tx_id"] for h in p["hops"]] for p in data["paths"]]
    assert [hops[0]["tx_id"]] in got
    for p in data["paths"]:
        times = [h["ts"] for h in p["hops"]]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert p["hops"][-1]["dst"] == mid and p["hops"][0]["src"] == hops[0]["src"]
    # nothing before the disbursement: the window excludes every path when until < first hop
    none = cli_json(store, "paths", hops[0]["src"], mid, "--since", rec["ts"], "--until", rec["ts"])
    assert none["path_count"] == 0
    r = runner.invoke(app, ["--store", str(store), "paths", "NOPE", mid])
    assert r.exit_code == 1 and "unknown account" in r.stderr


def test_account_summary(store, case):
    rec = cli_json(store, "trace", case["loan_id"])
    acct = rec["account"]
    data = cli_json(store, "account", acct)
    assert data["owner"]["party_id"] == rec["borrower_id"]
    assert data["totals"]["transactions"] == sum(d["transactions"] for d in data["by_day"])
    assert any(a["disbursement_id"] == rec["disbursement_id"] for a in data["alerts"])
    assert runner.invoke(app, ["--store", str(store), "account", acct]).exit_code == 0
    # the disbursement credit is part of the inflow, marked as such, and its loan is a counterparty
    credited = pl.read_csv(samples_dir() / "disbursements.csv", infer_schema=False).filter(pl.col("account_id") == acct)
    disbursed = sum(_minor(x) for x in credited["amount"].to_list())
    assert _minor(data["totals"]["disbursed"]) == disbursed > 0
    assert data["totals"]["disbursements"] == credited.height
    assert _minor(data["totals"]["inflow"]) == disbursed + sum(_minor(d["inflow"]) - _minor(d["disbursed"]) for d in data["by_day"])
    day = rec["ts"][:10]
    assert _minor(next(d for d in data["by_day"] if d["day"] == day)["disbursed"]) >= _minor(rec["amount"])
    every = cli_json(store, "account", acct, "--top", "100000")["top_counterparties"]
    loans = {c["loan"]: c for c in every if c["kind"] == "loan"}
    assert rec["loan_id"] in loans and loans[rec["loan_id"]]["account"] is None


def _minor(text: str) -> int:
    from flowgraph.core.values import parse_amount

    return parse_amount(text)


def test_history_filters(store, case):
    rows = [json.loads(x) for x in runner.invoke(app, ["--store", str(store), "history", "--json"]).stdout.splitlines()]
    assert len(rows) == pl.read_csv(samples_dir() / "loans.csv").height
    rec = cli_json(store, "trace", case["loan_id"])
    mine = runner.invoke(app, ["--store", str(store), "history", "--borrower", rec["borrower_id"], "--json"])
    mine = [json.loads(x) for x in mine.stdout.splitlines()]
    assert case["loan_id"] in {r["loan_id"] for r in mine}
    assert all(r["borrower_id"] == rec["borrower_id"] for r in mine)
    hit = next(r for r in mine if r["loan_id"] == case["loan_id"])
    assert hit["alerts"] >= 1 and "flow_back_self" in hit["rules"] or "flow_back_entrusted" in hit["rules"]
    day = rec["ts"][:10]
    same_day = runner.invoke(app, ["--store", str(store), "history", "--from", day, "--to", day, "--json"])
    assert case["loan_id"] in same_day.stdout
    big = runner.invoke(app, ["--store", str(store), "history", "--min-amount", "999999999.00", "--json"])
    assert big.exit_code == 0 and big.stdout.strip() == ""
