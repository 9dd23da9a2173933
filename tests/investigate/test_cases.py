"""Cases: the review state machine, four eyes, history and audit, repeat firings, --fail-on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import AccessError, InvalidValue, NotFound, StoreError
from flowgraph.investigate import cases
from flowgraph.rules.alerts import read_alerts
from flowgraph.security import access, audit
from tests.helpers import copy_store

runner = CliRunner()
USERS = [("root", "admin"), ("ana", "analyst"), ("al", "analyst"), ("rita", "risk_manager"),
         ("rob", "risk_manager"), ("reg", "regulator"), ("aud", "auditor")]  # fmt: skip


@pytest.fixture()
def store(scored_sample, tmp_path):
    s = copy_store(scored_sample, tmp_path / "store")
    for name, role in USERS:
        access.add_user(s, name, role, "test")
    return s


def cli(store, user, *args):
    return runner.invoke(app, ["--store", str(store.root), "--user", user, *args])


def an_alert(store, n=0):
    return read_alerts(store)["alert_id"].to_list()[n]


def test_confirm_then_second_review_confirms(store):
    a = an_alert(store)
    r = cli(store, "ana", "alerts", "review", a, "--decision", "confirm", "--reason", "came back in 2 days")
    assert r.exit_code == 0, r.output
    show = json.loads(cli(store, "ana", "alerts", "show", a, "--json").stdout)
    assert show["alert_id"] == a and show["case"]["status"] == "pending_second_review"
    assert set(show["case"]) >= {"status", "assignee", "reviews", "notes"}
    # four eyes: the same user is refused, whatever the role
    r = cli(store, "ana", "alerts", "review", a, "--decision", "confirm", "--reason", "me again")
    assert r.exit_code == 1 and "four eyes" in r.output
    with pytest.raises(AccessError):
        cases.review(store, a, "ana", "admin", "confirm", "as admin now")
    # another analyst lacks review.approve
    r = cli(store, "al", "alerts", "review", a, "--decision", "confirm", "--reason", "agree")
    assert r.exit_code == 1 and "review.approve" in r.output
    r = cli(store, "rita", "alerts", "review", a, "--decision", "confirm", "--reason", "agree", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["case"]["status"] == "confirmed"
    show = json.loads(cli(store, "ana", "alerts", "show", a, "--json").stdout)
    assert show["case"]["status"] == "confirmed"
    assert [(x["user"], x["stage"], x["decision"]) for x in show["case"]["reviews"]] == [
        ("ana", "first", "confirm"), ("rita", "second", "confirm")]
    # closed: no more reviews
    with pytest.raises(InvalidValue, match="closed"):
        cases.review(store, a, "rob", "risk_manager", "dismiss", "late")


def test_disagreement_goes_back_to_new_with_both_reasons(store):
    a = an_alert(store, 1)
    cases.review(store, a, "ana", "analyst", "dismiss", "salary payments")
    case = cases.review(store, a, "rita", "risk_manager", "confirm", "the spouse got it back")
    assert case["status"] == "new" and case["round"] == 2
    assert [r["reason"] for r in case["reviews"]] == ["salary payments", "the spouse got it back"]
    # a new round: rita may now give the first review and ana (no approve right) not the second
    case = cases.review(store, a, "rita", "risk_manager", "confirm", "second look")
    assert case["status"] == "pending_second_review"
    with pytest.raises(AccessError):
        cases.review(store, a, "rita", "risk_manager", "confirm", "me")
    assert cases.review(store, a, "rob", "risk_manager", "dismiss", "no")["status"] == "new"
    cases.review(store, a, "ana", "analyst", "dismiss", "round 3")
    assert cases.review(store, a, "root", "admin", "dismiss", "ok")["status"] == "dismissed"
    assert len(cases.case_of(store, a)["history"]) == 6


def test_assign_note_history_and_audit(store):
    a = an_alert(store, 2)
    assert cli(store, "ana", "alerts", "assign", a[:10], "rita").exit_code == 0  # a prefix works
    assert cli(store, "ana", "alerts", "assign", a, "nobody").exit_code == 1
    assert cli(store, "rita", "alerts", "note", a, "asked the branch for statements").exit_code == 0
    assert cli(store, "ana", "alerts", "note", a, "  ").exit_code == 1  # empty note
    assert cli(store, "aud", "alerts", "note", a, "auditors only read").exit_code == 1  # no 'review'
    assert cli(store, "reg", "alerts", "show", a).exit_code == 1  # regulators see aggregates only
    case = json.loads(cli(store, "aud", "alerts", "show", a, "--json").stdout)["case"]
    assert case["assignee"] == "rita" and case["notes"][0]["text"] == "asked the branch for statements"
    assert [h["action"] for h in case["history"]] == ["assign", "note"]
    logged = [json.loads(x) for x in (store.root / audit.LOG).read_text().splitlines()]
    acts = [x for x in logged if x["command"].startswith("case ")]
    assert [(x["command"], x["user"]) for x in acts] == [("case assign", "ana"), ("case note", "rita")]
    assert audit.verify(store)["ok"]
    assert cli(store, "ana", "alerts", "show", "nope-nope-nope").exit_code == 1


def test_analyst_sees_masked_ids_in_show(store):
    a = an_alert(store)
    masked = json.loads(cli(store, "ana", "alerts", "show", a, "--json").stdout)
    clear = json.loads(cli(store, "rita", "alerts", "show", a, "--json").stdout)
    assert clear["account"] != masked["account"] and "*" in masked["account"]


def test_event_log_is_append_only_and_survives_a_torn_write(store):
    a, b = an_alert(store), an_alert(store, 1)
    cases.note(store, a, "one", "ana", "analyst")
    path = store.root / cases.DIR / cases.EVENTS
    with open(path, "ab") as f:
        f.write(b'{"seq": 2, "alert_id": "' + b.encode() + b'", "act')  # a crash mid-write
    assert [e["seq"] for e in cases.read_events(store)] == [1]
    cases.note(store, b, "two", "ana", "analyst")
    assert [(e["seq"], e["text"]) for e in cases.read_events(store)] == [(1, "one"), (2, "two")]
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", lines[1]]) + "\n")
    with pytest.raises(StoreError, match="line 2"):
        cases.read_events(store)


def test_unknown_alert_and_bad_decision(store):
    with pytest.raises(NotFound):
        cases.review(store, "0" * 24, "ana", "analyst", "confirm", "x")
    with pytest.raises(InvalidValue):
        cases.review(store, an_alert(store), "ana", "analyst", "escalate", "x")
    r = cli(store, "ana", "alerts", "review", an_alert(store), "--decision", "maybe", "--reason", "x")
    assert r.exit_code == 2


def test_alerts_default_lists_exactly_as_before(store):
    listed = [json.loads(x) for x in cli(store, "ana", "alerts", "--json", "--level", "high").stdout.splitlines()]
    explicit = [json.loads(x) for x in cli(store, "ana", "alerts", "list", "--json", "--level", "high").stdout.splitlines()]
    assert listed == explicit and listed and all(x["level"] == "high" for x in listed)
    r = cli(store, "ana", "alerts")
    assert r.exit_code == 0 and "alert(s)" in r.stdout
    logged = json.loads((store.root / audit.LOG).read_text().splitlines()[-1])
    assert logged["command"] == "alerts list" and logged["user"] == "ana"  # guarded and audited


def test_repeat_firing_same_case_and_fail_on_counts_only_new_or_escalated(store):
    from flowgraph.rules.batch import last_data_day

    last = last_data_day(store)
    earlier = last - timedelta(days=3)
    a = an_alert(store)
    cases.note(store, a, "before the re-run", "ana", "analyst")
    # score an earlier night, then the last night again: alerts firing on both are repeats
    assert cli(store, "rita", "score", "--date", earlier.isoformat(), "--all").exit_code == 0
    r = cli(store, "rita", "score", "--date", last.isoformat(), "--all", "--fail-on", "low")
    fresh = cases.fresh_alerts(store, [last])
    rows = {x["alert_id"]: x for x in cases.alerts_with_cases(store)}
    repeats = [x for x in rows.values() if x["repeat"]]
    assert repeats, "some alert must have fired on both nights"
    assert all(x["first_seen"] == earlier.isoformat() for x in repeats)
    assert set(fresh["alert_id"].to_list()) <= set(rows)
    for aid in fresh["alert_id"].to_list():
        assert not rows[aid]["repeat"] or fresh.filter(fresh["alert_id"] == aid)["change"][0] == "escalated"
    assert r.exit_code == (1 if fresh.height else 0)
    # re-running the last night: nothing new any more, --fail-on passes
    assert cli(store, "rita", "score", "--date", last.isoformat(), "--all", "--fail-on", "low").exit_code == (1 if fresh.height else 0)
    # the case of a repeated alert is kept
    assert cases.case_of(store, a)["notes"][0]["text"] == "before the re-run"


def test_escalation_is_fresh(store, tmp_path):
    import polars as pl

    from flowgraph.rules.alerts import partition_dir, write_partition

    last = read_alerts(store)["as_of"][0]
    from datetime import date

    day = date.fromisoformat(last)
    df = read_alerts(store, day=day)
    prev = day - timedelta(days=1)
    lowered = df.with_columns(pl.lit("low").alias("level"), pl.lit(prev.isoformat()).alias("as_of"))
    write_partition(store, prev, lowered, {})
    assert partition_dir(store, prev).exists()
    fresh = cases.fresh_alerts(store, [day])
    changed = df.filter(pl.col("level") != "low")
    assert sorted(fresh["alert_id"].to_list()) == sorted(changed["alert_id"].to_list())
    assert set(fresh["change"].to_list()) <= {"escalated"}


def test_dispositions_per_rule_in_report(store):
    df = read_alerts(store)
    a, b = df["alert_id"][0], df["alert_id"][1]
    for aid, decision in ((a, "confirm"), (b, "dismiss")):
        cases.review(store, aid, "ana", "analyst", decision, "r1")
        cases.review(store, aid, "rita", "risk_manager", decision, "r2")
    disp = cases.dispositions(store)
    assert sum(d["alerts"] for d in disp.values()) == df.height
    assert sum(d["confirmed"] for d in disp.values()) == 1 and sum(d["dismissed"] for d in disp.values()) == 1
    rep = json.loads(cli(store, "reg", "report", "--json").stdout)
    assert rep["dispositions"] == disp
