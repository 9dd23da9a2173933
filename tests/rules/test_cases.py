"""Rule cases as data: ``cases/<kind>.toml``, one file per rule kind, collected here.

A case file::

    kind = "repay_with_loan"

    [setup]                      # optional: rows every case of the file starts with
    loans = \"\"\"
    loan_id,borrower_id,amount,payment_mode
    L1,P1,1000000.00,self
    \"\"\"

    [[case]]
    id = "middleman_repays_older_loan"       # the test id: repay_with_loan/<id>
    says = "what the case shows, in a sentence"
    params = { max_hops = 3 }                # optional: overrides of the shipped rules' params
    as_of = "2024-02-01"                     # optional (default: the last day with data)
    transactions = \"\"\"
    tx_id,ts,src_account,dst_account,amount
    T1,2024-01-02T10:00:00Z,AD,AM,800000.00
    \"\"\"
    [[case.alerts]]                          # every alert of this kind, one table each
    loan = "L1"                              # (a case without any: ``alerts = []``)
    min_hops = 2
    paths = [["T1", "T2"]]
    reason = "..."

Tables are CSV text in the data contract's columns (``flowgraph schema``); a case's rows
are added to the setup's. Parties that are named (as owners, borrowers or in relations)
but not listed are persons; accounts that appear but are not listed belong each to an
unrelated party of its own. Everything is ingested through the real ingest path (a
rejected row fails the case), scored as ``flowgraph score --all`` with the shipped pack's
rules of the kind, and the alerts of the kind are compared with ``alerts``: the same
loans, and each listed field equal (``level``, ``score``, ``min_hops``, ``path_count``,
``truncated``, ``returned_amount`` and ``first_return`` as in the contract, ``reason``
exactly, ``paths`` as tx ids). Each case also runs the kind's detector and its slow
reference on the same inputs and checks they agree. A ``classification`` case scores with
the whole shipped pack, may list the alerts of every kind, and compares ``suggestions``
(loan, grade, action) with what ``flowgraph classify`` suggests on its day.
"""

from __future__ import annotations

import dataclasses
import io
import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowgraph.core.schema import TABLES
from flowgraph.core.values import DAY_MS, day_start_ms, parse_amount, parse_ts
from flowgraph.graph.store_index import index_as_of
from flowgraph.ingest.load import ingest_frames
from flowgraph.rules.alerts import read_alerts
from flowgraph.rules.batch import last_data_day, score_days, select_disbursements
from flowgraph.rules.classification import suggest
from flowgraph.rules.context import Context
from flowgraph.rules.kinds import KINDS
from flowgraph.rules.pack import load_pack, with_params
from flowgraph.store.embedded import Store

CASES = Path(__file__).parent / "cases"
CASE_KEYS = {"id", "says", "params", "as_of", "alerts", "suggestions", *TABLES}
ALERT_KEYS = {"loan", "rule", "level", "score", "min_hops", "path_count", "truncated", "returned_amount",
              "first_return", "reason", "paths"}  # fmt: skip


def _collect() -> list:
    out = []
    for path in sorted(CASES.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert data.get("kind") == path.stem, f"{path}: kind must be {path.stem!r}"
        for case in data["case"]:
            out.append(pytest.param(path.stem, data.get("setup", {}), case, id=f"{path.stem}/{case['id']}"))
    return out


def _frames(setup: dict, case: dict) -> dict[str, pl.DataFrame]:
    """The case's tables (setup rows first) as all-text frames, with the implied parties
    and accounts added."""
    frames: dict[str, pl.DataFrame] = {}
    for table in TABLES:
        parts = [
            pl.read_csv(io.StringIO(src[table].strip() + "\n"), infer_schema_length=0)
            for src in (setup, case)
            if table in src
        ]
        if parts:
            frames[table] = pl.concat(parts, how="diagonal")
    accounts = frames.get("accounts", pl.DataFrame(schema={"account_id": pl.Utf8, "owner_id": pl.Utf8}))
    seen = {c for t, cols in (("transactions", ("src_account", "dst_account")),
                              ("disbursements", ("account_id",)), ("repayments", ("account_id",)))
            if t in frames for col in cols for c in frames[t][col].to_list()}  # fmt: skip
    extra = sorted(seen - set(accounts["account_id"].to_list()))
    if extra:
        more = pl.DataFrame({"account_id": extra, "owner_id": [f"owner-of-{a}" for a in extra]})
        accounts = pl.concat([accounts, more], how="diagonal")
    frames["accounts"] = accounts
    parties = frames.get("parties", pl.DataFrame(schema={"party_id": pl.Utf8, "kind": pl.Utf8}))
    named = set(accounts["owner_id"].to_list())
    named |= set(frames["loans"]["borrower_id"].to_list()) if "loans" in frames else set()
    if "relations" in frames:
        named |= set(frames["relations"]["party_a"].to_list()) | set(frames["relations"]["party_b"].to_list())
    missing = sorted(named - set(parties["party_id"].to_list()))
    if missing:
        parties = pl.concat([parties, pl.DataFrame({"party_id": missing, "kind": ["person"] * len(missing)})], how="diagonal")
    frames["parties"] = parties
    return frames


def _pack(kind: str, case: dict):
    """The shipped pack's rules of ``kind`` with the case's parameter overrides; for a kind
    the batch does not score (classification: it reads the other kinds' alerts), with every
    other rule of the pack too."""
    pack = load_pack()
    rules = [with_params(r, case.get("params", {})) if r.kind == kind else r for r in pack.rules]
    if KINDS[kind].alerts is not None:
        rules = [r for r in rules if r.kind == kind]
    return dataclasses.replace(pack, rules=tuple(rules))


def _check_alert(a: dict, want: dict, where: str) -> None:
    for key, value in want.items():
        if key in ("loan", "rule"):
            continue
        if key == "returned_amount":
            assert a[key] == parse_amount(value), (where, key)
        elif key == "first_return":
            assert a["first_return_ts"] == parse_ts(value), (where, key)
        elif key == "reason":
            assert a["reasons"] == [value], (where, key)
        elif key == "paths":
            assert [[h["tx_id"] for h in p["hops"]] for p in a["paths"]] == value, (where, key)
        else:
            assert a[key] == value, (where, key)


def _same_hits(got, ref, where: str) -> None:
    for col in ("fired", "amount", "first_ts", "hops"):
        assert getattr(got, col).tolist() == getattr(ref, col).tolist(), (where, col)


@pytest.mark.parametrize(("kind", "setup", "case"), _collect())
def test_case(tmp_path, kind, setup, case):
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"unknown keys {sorted(unknown)}"
    store = Store.init(tmp_path / "store")
    frames = _frames(setup, case)
    report = ingest_frames(store, [(f"{case['id']}:{t}", t, df.lazy()) for t, df in frames.items()])
    assert report["rejected"] == 0, report
    day = date.fromisoformat(case["as_of"]) if "as_of" in case else last_data_day(store)
    pack = _pack(kind, case)
    score_days(store, [day], pack, every=True)

    scored = KINDS[kind].alerts is not None  # else: classification, which suggests grades
    alerts = read_alerts(store, day).sort("loan_id", "rule_id")
    if scored:
        alerts = alerts.filter(pl.col("kind") == kind)
    if "alerts" in case:  # every alert of the kind (a classification case: of every kind)
        found = [(a["loan_id"], a) for a in alerts.iter_rows(named=True)]
        want = sorted(case["alerts"], key=lambda w: (w["loan"], w.get("rule", "")))
        assert [x for x, _ in found] == [w["loan"] for w in want], "alerted loans"
        for (loan, a), w in zip(found, want, strict=True):
            assert not set(w) - ALERT_KEYS, f"unknown alert keys {sorted(set(w) - ALERT_KEYS)}"
            if "rule" in w:
                assert a["rule_id"] == w["rule"], loan
            _check_alert(a, w, loan)
    if not scored:
        got = suggest(store, day, pack)
        rows = [{"loan": r["loan_id"], "grade": r["suggested_grade"], "action": r["action"]} for r in got.iter_rows(named=True)]
        assert sorted(rows, key=lambda r: r["loan"]) == sorted(case["suggestions"], key=lambda r: r["loan"])
        return
    assert "alerts" in case, "a case lists its alerts (alerts = [] for none)"

    # the kind's detector and its slow reference agree on the same inputs
    ctx = Context.load(store, pack)
    index = index_as_of(ctx.index, day_start_ms(day) + DAY_MS)
    module = KINDS[kind]
    for rule in pack.rules:
        sel = select_disbursements(ctx, rule, day, every=True)
        args = module.detector_args(ctx, index, rule, sel)
        params = module.Params(**rule.params)
        got, ref = module.detect(*args, params), module.reference(*args, params)
        _same_hits(got, ref, rule.id)
        fired = set(np.asarray(sel["loan_id"].to_list())[got.fired].tolist())
        assert fired == set(alerts.filter(pl.col("rule_id") == rule.id)["loan_id"].to_list()), rule.id


@pytest.mark.parametrize("path", sorted(CASES.glob("*.toml")), ids=lambda p: p.stem)
def test_case_file_shows_the_pattern_and_its_lookalike(path):
    """Every file has cases that fire and look-alike cases that must not."""
    cases = tomllib.loads(path.read_text(encoding="utf-8"))["case"]
    assert len(cases) >= 3
    assert len({c["id"] for c in cases}) == len(cases), "case ids repeat"
    fires = [c for c in cases if c.get("alerts") or c.get("suggestions")]
    quiet = [c for c in cases if c["id"].startswith("lookalike_")]
    assert fires and quiet
    for c in quiet:  # silent: no alert (a classification case: no suggested change)
        assert c["suggestions" if "suggestions" in c else "alerts"] == [], c["id"]
