"""End to end: store → index → trace, checked against labels and the brute-force reference."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import NotFound
from flowgraph.core.resources import samples_dir
from flowgraph.core.values import DAY_MS, parse_amount, ratio_threshold
from flowgraph.engine.flow_back_reference import find_flow_back_reference
from flowgraph.ingest.load import ingest_paths
from flowgraph.investigate.trace import trace_loans
from flowgraph.rules.kinds.flow_back import TraceOptions
from flowgraph.store.embedded import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    store = Store.init(tmp_path_factory.mktemp("sample") / "store")
    ingest_paths(store, [samples_dir()])
    return store


def test_sample_flow_back_equals_labels(sample_store):
    labels = pl.read_parquet(samples_dir() / "labels.parquet")
    records = trace_loans(sample_store, None, TraceOptions.defaults())
    found = {r["disbursement_id"]: r for r in records if r["paths"]}
    fb = labels.filter(pl.col("typology").str.starts_with("fb_"))
    assert set(found) == set(fb["disbursement_id"].to_list())
    for case in fb.iter_rows(named=True):
        rec = found[case["disbursement_id"]]
        assert parse_amount(rec["returned_amount"]) == case["returned_amount"], case["case_id"]
        on_paths = {h["tx_id"] for p in rec["paths"] for h in p["hops"]}
        assert on_paths <= set(case["tx_ids"]), case["case_id"]
    negatives = labels.filter(pl.col("typology").str.starts_with("neg_"))
    assert not set(negatives["disbursement_id"].to_list()) & set(found)


def test_trace_options_override_changes_result(sample_store):
    labels = pl.read_parquet(samples_dir() / "labels.parquet")
    late = labels.filter(pl.col("typology") == "neg_late_return")["loan_id"].to_list()
    base = trace_loans(sample_store, late, TraceOptions.defaults())
    assert all(not r["paths"] for r in base)
    wide = trace_loans(sample_store, late, TraceOptions.defaults().override(window_days=90))
    assert any(r["paths"] for r in wide)  # the late returns are real paths, just outside 30 days


def test_unknown_loan_is_an_error(sample_store):
    with pytest.raises(NotFound, match="unknown loan id"):
        trace_loans(sample_store, ["NOPE"])
    r = runner.invoke(app, ["--store", str(sample_store.root), "trace", "NOPE"])
    assert r.exit_code == 1 and "unknown loan id" in r.stderr


def test_trace_json_shape(sample_store):
    labels = pl.read_parquet(samples_dir() / "labels.parquet")
    loan = labels.filter(pl.col("typology") == "fb_direct")["loan_id"][0]
    r = runner.invoke(app, ["--store", str(sample_store.root), "trace", loan, "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    rec = next(x for x in lines if x["paths"])
    for k in ("loan_id", "disbursement_id", "account", "ts", "amount", "linked_accounts", "paths",
              "returned_amount", "return_ratio", "truncated"):
        assert k in rec
    hop = rec["paths"][0]["hops"][0]
    assert set(hop) == {"tx_id", "src", "dst", "ts", "amount"}
    assert hop["ts"].endswith("Z") and len(hop["ts"]) == 24
    assert "." in hop["amount"] and len(hop["amount"].split(".")[1]) == 2
    # human output: a tree per disbursement
    r = runner.invoke(app, ["--store", str(sample_store.root), "trace", loan])
    assert r.exit_code == 0 and "path 1" in r.stdout


def _linked_accounts_plain(store: Store):
    """(borrower, time) → accounts of the borrower and of parties one relation away that
    is valid at that time (since <= time; plain Python)."""
    rel = store.read("relations")
    nbrs: dict[str, list[tuple[str, int | None]]] = {}
    for a, b, since in zip(rel["party_a"].to_list(), rel["party_b"].to_list(), rel["since"].to_list(), strict=True):
        nbrs.setdefault(a, []).append((b, since))
        nbrs.setdefault(b, []).append((a, since))
    acc = store.read("accounts")
    owned: dict[str, set[str]] = {}
    for aid, owner in zip(acc["account_id"].to_list(), acc["owner_id"].to_list(), strict=True):
        owned.setdefault(owner, set()).add(aid)

    def linked(borrower: str, at: int) -> set[str]:
        parties = {borrower} | {o for o, since in nbrs.get(borrower, []) if since is None or since <= at}
        return set().union(*(owned.get(p, set()) for p in parties))

    return linked


def test_finbench_trace_all_equals_reference(finbench_store):
    """Every FinBench disbursement: the CLI's paths equal the brute-force reference's."""
    r = runner.invoke(app, ["--store", str(finbench_store.root), "trace", "--all", "--json"])
    assert r.exit_code == 0, r.stderr
    records = [json.loads(x) for x in r.stdout.splitlines()]
    disb = finbench_store.read("disbursements").join(
        finbench_store.read("loans", ["loan_id", "borrower_id"]), on="loan_id"
    )
    assert len(records) == disb.height == 2758
    tx = finbench_store.read("transactions")
    src, dst = tx["src_account"].to_numpy(), tx["dst_account"].to_numpy()
    ts, amount = tx["ts"].to_numpy(), tx["amount"].to_numpy()
    tx_ids = tx["tx_id"].to_list()
    linked = _linked_accounts_plain(finbench_store)
    by_id = {rec["disbursement_id"]: rec for rec in records}
    window = 30 * DAY_MS
    hits = 0
    for row in disb.iter_rows(named=True):
        t0, a = row["ts"], row["amount"]
        # conditions 2 and 4 only concern single edges: filtering them first is exact
        keep = np.flatnonzero((ts > t0) & (ts <= t0 + window) & (amount >= ratio_threshold(0.1, a)))
        ref = find_flow_back_reference(
            src[keep].tolist(), dst[keep].tolist(), ts[keep].tolist(), amount[keep].tolist(),
            row["account_id"], t0, a, linked(row["borrower_id"], t0), window_ms=window, max_hops=5,
            min_amount_ratio=0.1, max_paths=100,
        )
        rec = by_id[row["disbursement_id"]]
        got = [[h["tx_id"] for h in p["hops"]] for p in rec["paths"]]
        want = [[tx_ids[keep[e]] for e in p] for p in ref.paths]
        assert got == want, row["disbursement_id"]
        assert rec["path_count"] == ref.path_count and rec["truncated"] == ref.truncated
        assert parse_amount(rec["returned_amount"]) == ref.returned_amount
        hits += bool(ref.paths)
    assert hits > 0  # the comparison must not be vacuous


def _trace_json(store, *extra):
    r = runner.invoke(app, ["--store", str(store.root), "trace", "--all", "--json", *map(str, extra)])
    assert r.exit_code == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_trace_takes_parameters_from_rule_pack(sample_store, tmp_path):
    import shutil

    from flowgraph.core.resources import rules_dir

    pack = tmp_path / "pack"
    shutil.copytree(rules_dir() / "default", pack)
    for name in ("flow_back_self.toml", "flow_back_entrusted.toml"):
        p = pack / name
        p.write_text(p.read_text().replace("window_days = 30", "window_days = 2"))
    default = _trace_json(sample_store)
    short = _trace_json(sample_store, "--rules", pack)
    n_default = sum(bool(r["paths"]) for r in default)
    n_short = sum(bool(r["paths"]) for r in short)
    assert n_short < n_default
    for r in short:
        for p in r["paths"]:
            assert p["hops"][-1]["ts"] <= format_ts_plus(r["ts"], 2)
    # a flag overrides the pack
    assert sum(bool(r["paths"]) for r in _trace_json(sample_store, "--rules", pack, "--window-days", 30)) == n_default


def format_ts_plus(iso: str, days: int) -> str:
    from flowgraph.core.values import format_ts, parse_ts

    return format_ts(parse_ts(iso) + days * DAY_MS)


def test_maxflow_tracing_same_paths_bounded_amounts(sample_store):
    greedy = _trace_json(sample_store)
    exact = _trace_json(sample_store, "--tracing", "maxflow")
    assert [r["paths"] for r in exact] == [r["paths"] for r in greedy]
    for r in exact:
        assert 0 <= parse_amount(r["returned_amount"]) <= parse_amount(r["amount"])
        if r["paths"]:
            assert parse_amount(r["returned_amount"]) > 0


def test_read_rows_reads_the_right_rows_across_row_groups(tmp_path):
    """read_rows maps table positions to rows through several Parquet row groups."""
    import numpy as np
    import polars as pl

    from flowgraph.graph.hops import read_rows

    n = 1000
    df = pl.DataFrame({"tx_id": [f"t{i:04d}" for i in range(n)], "ts": list(range(n)), "amount": [i * 3 for i in range(n)]})
    path = tmp_path / "t.parquet"
    df.write_parquet(path, row_group_size=37)

    class OneTable:  # the two Store methods read_rows uses
        def table_path(self, table):
            return path

        def scan(self, table):
            return pl.scan_parquet(path)

    rng = np.random.default_rng(3)
    for size in (1, 5, 80, 400):
        rows = rng.choice(n, size=size, replace=True)
        got = read_rows(OneTable(), "transactions", rows, ["tx_id", "amount"])
        want = np.unique(rows)
        assert got["__row"].to_list() == want.tolist()
        assert got["tx_id"].to_list() == [f"t{i:04d}" for i in want]
        assert got["amount"].to_list() == [i * 3 for i in want]
    assert read_rows(OneTable(), "transactions", np.array([0, n - 1]), ["ts"])["ts"].to_list() == [0, n - 1]
