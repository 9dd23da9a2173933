"""Repayment status (against a slow day-by-day reference) and five-level classification:
floors from overdue days and alerts, manual records kept, repeated apply idempotent."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import RulePackError
from flowgraph.core.resources import rules_dir
from flowgraph.ingest.load import ingest_paths
from flowgraph.rules.classification import apply, suggest
from flowgraph.rules.pack import load_pack
from flowgraph.rules.repayment import ScheduleParams, repayment_status
from flowgraph.store.embedded import Store
from tests.helpers import copy_store

runner = CliRunner()
DAY = 86_400_000
T0 = int(datetime(2024, 1, 10, 9, 30, tzinfo=UTC).timestamp() * 1000)


def ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


# ------------------------------------------------------------------ repayment status
def reference_days_past_due(principal, first_ts, maturity, repayments, as_of: date, p: ScheduleParams) -> int:
    """Walk the schedule instalment by instalment, paying oldest first."""
    end = ms(as_of) + DAY
    if p.schedule == "bullet":
        dues = [(maturity, principal)]
    else:
        dates, t = [], first_ts + p.first_due_days * DAY
        while t < maturity:
            dates.append(t)
            t += p.period_days * DAY
        dates.append(maturity)
        n = len(dates)
        dues = [(d, principal * (k + 1) // n - principal * k // n) for k, d in enumerate(dates)]
    money = sum(a for ts, a in repayments if ts < end)
    for due_ts, part in dues:
        if money >= part:
            money -= part
            continue
        if due_ts >= end:
            return 0
        return (ms(as_of) - (due_ts - due_ts % DAY)) // DAY
    return 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    principal=st.integers(1, 10**9),
    months=st.integers(0, 40),
    extra_days=st.integers(0, 29),
    pays=st.lists(st.tuples(st.integers(0, 1500), st.integers(1, 4 * 10**8)), max_size=12),
    as_of_day=st.integers(0, 1600),
    schedule=st.sampled_from(["installment", "bullet"]),
    first_due=st.integers(0, 60),
    period=st.sampled_from([7, 30, 91]),
    grace=st.integers(0, 30),
)
def test_repayment_status_equals_reference(principal, months, extra_days, pays, as_of_day, schedule, first_due, period, grace):
    p = ScheduleParams(schedule=schedule, period_days=period, first_due_days=first_due, grace_days=grace)
    maturity = T0 - T0 % DAY + (months * 30 + extra_days + 1) * DAY
    reps = [(T0 + d * DAY + 3_600_000, a) for d, a in pays]
    as_of = (datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(days=as_of_day)).date()
    got = repayment_status(
        pl.DataFrame({"loan_id": ["L"], "amount": [principal], "maturity_date": [maturity]}),
        pl.DataFrame({"loan_id": ["L"], "ts": [T0]}),
        pl.DataFrame({"loan_id": ["L"] * len(reps), "ts": [r[0] for r in reps], "amount": [r[1] for r in reps]},
                     schema={"loan_id": pl.Utf8, "ts": pl.Int64, "amount": pl.Int64}),
        as_of, p,
    ).row(0, named=True)
    want = reference_days_past_due(principal, T0, maturity, reps, as_of, p)
    assert got["days_past_due"] == want
    assert got["overdue_days"] == (want if want > grace else 0)
    repaid = sum(a for ts, a in reps if ts < ms(as_of) + DAY)
    assert got["repaid_amount"] == repaid
    assert got["status"] == ("repaid" if repaid >= principal else "open")


def test_status_edges():
    loans = pl.DataFrame({"loan_id": ["A", "B", "C"], "amount": [100_00, 100_00, 100_00],
                          "maturity_date": [T0 + 60 * DAY, None, T0 + 60 * DAY]})
    disb = pl.DataFrame({"loan_id": ["A", "B", "C"], "ts": [T0, T0, T0 + 400 * DAY]})
    reps = pl.DataFrame({"loan_id": ["A"], "ts": [T0 + 100 * DAY], "amount": [100_00]})
    as_of = (datetime.fromtimestamp(T0 / 1000, UTC) + timedelta(days=90)).date()
    st_ = repayment_status(loans, disb, reps, as_of, ScheduleParams(grace_days=0))
    rows = {r["loan_id"]: r for r in st_.iter_rows(named=True)}
    assert set(rows) == {"A", "B"}  # C is disbursed after the as-of day
    assert rows["B"]["status"] == "no_schedule" and rows["B"]["overdue_days"] == 0
    # A: instalments on day 30 (50.00) and day 60 (100.00 cumulative); nothing repaid by day 90
    assert rows["A"]["due_amount"] == 100_00 and rows["A"]["arrears"] == 100_00
    assert rows["A"]["days_past_due"] == 60
    later = repayment_status(loans, disb, reps, as_of + timedelta(days=11), ScheduleParams(grace_days=0))
    assert later.filter(pl.col("loan_id") == "A").row(0, named=True)["status"] == "repaid"


# ------------------------------------------------------------------ classification
def write_bank(folder, overdue_loans: dict[str, int], manual: list[tuple[str, str, str]] = ()):
    """Loans with no repayment, each maturing ``days`` before 2024-12-31 and disbursed 20 days
    before maturity, so the whole principal is one instalment due at maturity."""
    folder.mkdir(parents=True, exist_ok=True)
    as_of = date(2024, 12, 31)
    rows_l, rows_d, rows_a, rows_p = [], [], [], []
    for i, (loan, days) in enumerate(overdue_loans.items()):
        maturity = ms(as_of) - days * DAY
        rows_p.append(f"P{i},person")
        rows_a.append(f"A{i},P{i}")
        rows_l.append(f"{loan},P{i},1000.00,{maturity}")
        rows_d.append(f"{loan},A{i},1000.00,{maturity - 20 * DAY}")
    (folder / "parties.csv").write_text("party_id,kind\n" + "\n".join(rows_p) + "\n")
    (folder / "accounts.csv").write_text("account_id,owner_id\n" + "\n".join(rows_a) + "\n")
    (folder / "loans.csv").write_text("loan_id,borrower_id,amount,maturity_date\n" + "\n".join(rows_l) + "\n")
    (folder / "disbursements.csv").write_text("loan_id,account_id,amount,ts\n" + "\n".join(rows_d) + "\n")
    if manual:
        (folder / "classifications.csv").write_text(
            "loan_id,as_of,grade,source,reason\n" + "\n".join(f"{lo},{d},{g},manual,desk review" for lo, d, g in manual) + "\n"
        )
    store = Store.init(folder / "store")
    ingest_paths(store, [folder / n for n in ("parties.csv", "accounts.csv", "loans.csv", "disbursements.csv")]
                 + ([folder / "classifications.csv"] if manual else []))
    return store


def pack_with(tmp_path, **params):
    dest = tmp_path / "pack"
    shutil.copytree(rules_dir() / "default", dest)
    text = (dest / "classification.toml").read_text()
    for k, v in params.items():
        text = "\n".join(f"{k} = {json.dumps(v)}" if line.startswith(f"{k} =") else line for line in text.splitlines()) + "\n"
    (dest / "classification.toml").write_text(text)
    return load_pack(dest)


def test_overdue_floors_and_never_downgrade(tmp_path):
    store = write_bank(tmp_path / "bank", {"L0": 0, "L10": 10, "L20": 20, "L95": 95, "L300": 300, "L400": 400, "LM": 120},
                       manual=[("LM", "2024-06-30", "doubtful")])
    sug = {r["loan_id"]: r for r in suggest(store, date(2024, 12, 31), load_pack()).iter_rows(named=True)}
    # grace 15 days: 10 days past due is not overdue yet; 20 is → special_mention
    assert set(sug) == {"L20", "L95", "L300", "L400"}
    assert {k: v["suggested_grade"] for k, v in sug.items()} == {
        "L20": "special_mention", "L95": "substandard", "L300": "doubtful", "L400": "loss"}
    assert all(v["action"] == "change" for v in sug.values())
    assert "overdue 95 days (> 90)" in sug["L95"]["reasons"][0]
    # LM is 120 days overdue (→ substandard) but already doubtful by hand: never lowered


def test_apply_twice_same_history_and_manual_kept(tmp_path):
    store = write_bank(tmp_path / "bank", {"L1": 100, "L2": 100, "L3": 5},
                       manual=[("L2", "2024-12-31", "normal"), ("L1", "2024-06-30", "normal")])
    pack = load_pack()
    day = date(2024, 12, 31)
    res = runner.invoke(app, ["--store", str(store.root), "classify", "--as-of", "2024-12-31", "--apply", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    summary = lines[-1]
    assert summary["written"] == 1 and summary["kept_manual"] == 1
    by_loan = {r["loan_id"]: r for r in lines[:-1]}
    assert by_loan["L2"]["action"] == "kept_manual" and by_loan["L1"]["action"] == "change"
    hist1 = store.read("classifications").sort("loan_id", "as_of")
    snap1 = Store.open(store.root).snapshot_id
    auto = hist1.filter(pl.col("source") == "auto")
    assert auto["loan_id"].to_list() == ["L1"] and auto["grade"].to_list() == ["substandard"]
    assert auto["reason"][0].startswith(f"auto (rule pack default {pack.hash[:12]})")
    # the manual record of L2 on that day is untouched
    assert hist1.filter(pl.col("loan_id") == "L2").select("grade", "source").rows() == [("normal", "manual")]
    again = apply(Store.open(store.root), day, suggest(Store.open(store.root), day, pack), pack)
    assert again["written"] == 0 and again["applied"] == 1 and again["kept_manual"] == 1
    assert Store.open(store.root).snapshot_id == snap1
    assert Store.open(store.root).read("classifications").sort("loan_id", "as_of").equals(hist1)


def test_stricter_rules_replace_own_auto_record_only(tmp_path):
    store = write_bank(tmp_path / "bank", {"L1": 100}, manual=[])
    day = date(2024, 12, 31)
    apply(store, day, suggest(store, day, load_pack()), load_pack())
    strict = pack_with(tmp_path, doubtful_after_days=60)
    sug = suggest(store, day, strict)
    assert sug.row(0, named=True)["action"] == "change" and sug.row(0, named=True)["suggested_grade"] == "doubtful"
    apply(store, day, sug, strict)
    hist = store.read("classifications")
    assert hist.height == 1 and hist.row(0, named=True)["grade"] == "doubtful"
    # relaxing the rules again never lowers the auto record
    assert suggest(store, day, load_pack()).row(0, named=True)["action"] == "applied"


def test_several_alerts_on_one_loan(scored_sample, tmp_path):
    from flowgraph.rules.alerts import read_alerts

    alerts = read_alerts(scored_sample)
    loan = alerts.group_by("loan_id").len().sort("len", "loan_id", descending=[True, False]).row(0, named=True)
    assert loan["len"] >= 2, "the sample should have a loan with several alerts"
    pack = pack_with(tmp_path, alert_kinds=["flow_back", "repay_with_loan", "large_outflow", "prohibited_destination",
                                            "rapid_pass_through", "transfer_cycle", "split_disbursement"],
                     alert_levels=["high", "medium", "low"], alert_grade="doubtful")
    store = copy_store(scored_sample, tmp_path / "s")
    # the sample is scored as of its last day, so its alerts are known from 2024-12-31 on
    assert suggest(store, date(2024, 12, 30), pack).filter(pl.col("reasons").list.join(" ").str.contains(" alert ")).height == 0
    sug = suggest(store, date(2024, 12, 31), pack).filter(pl.col("loan_id") == loan["loan_id"]).row(0, named=True)
    alert_reasons = [r for r in sug["reasons"] if " alert " in r]
    assert len(alert_reasons) == loan["len"]
    assert sug["suggested_grade"] in ("doubtful", "loss")
    assert sug["action"] == "kept_manual"  # the sample's quarter-end manual grades are dated 2024-12-31


def test_sample_classify_cli_and_loan_status(scored_sample, tmp_path):
    store = copy_store(scored_sample, tmp_path / "s")
    res = runner.invoke(app, ["--store", str(store.root), "classify", "--as-of", "2024-12-15", "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert rows[-1]["change"] > 0 and rows[-1]["written"] == 0  # a dry run writes nothing
    assert store.read("classifications").filter(pl.col("source") == "auto").height == 0
    loan = next(r["loan_id"] for r in rows[:-1] if r["overdue_days"])
    res = runner.invoke(app, ["--store", str(store.root), "loan", loan, "--as-of", "2024-12-15", "--json"])
    data = json.loads(res.stdout)
    assert data["repayment_status"]["overdue_days"] == next(r["overdue_days"] for r in rows[:-1] if r["loan_id"] == loan)
    res = runner.invoke(app, ["--store", str(store.root), "loan", loan, "--as-of", "2024-12-15"])
    assert "days overdue" in res.stdout


def test_classification_rule_is_validated(tmp_path):
    dest = tmp_path / "bad"
    shutil.copytree(rules_dir() / "default", dest)
    p = dest / "classification.toml"
    p.write_text(p.read_text().replace('alert_grade = "special_mention"', 'alert_grade = "watch"'))
    with pytest.raises(RulePackError, match=r"classification.toml:\d+: .*alert_grade.*'watch' is not one of"):
        load_pack(dest)
