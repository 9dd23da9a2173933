"""Regressions for the holes of issue #20, each reproduced as the issue describes it and
shown closed. Crash and full-disk faults (hole 5, half-swapped alerts and temp files of
hole 8) are in tests/robustness/test_crashes.py; re-hashed evidence of every file type
(hole 6) in tests/evidence/test_evidence.py; setup mode (hole 7) also in test_access.py.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import polars as pl
import pytest

from flowgraph.cli import app
from flowgraph.security import audit
from flowgraph.store.embedded import Store
from tests.helpers import copy_store, fast_runner

runner = fast_runner()
ROLES = {"reg": "regulator", "ana": "analyst", "rita": "risk_manager", "aud": "auditor", "root": "admin"}


def invoke(store: Path, *args, user: str | None = None, env: dict | None = None):
    head = ["--store", str(store)] + (["--user", user] if user else [])
    return runner.invoke(app, head + [str(a) for a in args], env=env)


def _msg(r) -> str:
    return " ".join(r.stderr.split())  # rich wraps long lines


@pytest.fixture
def store(scored_sample, tmp_path) -> Path:
    """A private copy of the scored sample with a user of every role (admin added last)."""
    s = copy_store(scored_sample, tmp_path / "store").root
    for name, role in ROLES.items():
        assert invoke(s, "users", "add", name, "--role", role, user="root").exit_code == 0
    return s


@pytest.fixture
def loan(scored_sample) -> str:
    from flowgraph.rules.alerts import read_alerts

    return read_alerts(scored_sample).filter(pl.col("kind") == "flow_back")["loan_id"][0]


def _entries(s: Path) -> list[dict]:
    return audit.show(Store(s))


# ------------------------------------------------------------------ 1. option order
@pytest.mark.parametrize("user", ["mallory", "reg", "ana"])
def test_1_options_before_the_target_do_not_skip_the_guard(store, loan, tmp_path, user):
    out = tmp_path / "DIR"
    r = invoke(store, "evidence", "--unmasked", "--out", out, loan, user=user)
    assert r.exit_code == 1 and "access denied" in r.stderr, r.output
    assert not out.exists()
    last = _entries(store)[-1]
    assert (last["user"], last["command"], last["outcome"]) == (user, "evidence write", "denied")


def test_1_allowed_user_gets_their_name_and_owner_only_files(store, loan, tmp_path):
    out = tmp_path / "DIR"
    r = invoke(store, "evidence", "--unmasked", "--out", out, loan, user="aud")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "manifest.json").read_text())["generated_by"] == "aud"
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in [out, *out.iterdir()])
    started, done = _entries(store)[-2:]
    assert (started["outcome"], done["outcome"], done["start"]) == ("started", "ok", started["seq"])
    assert done["command"] == "evidence write" and done["user"] == "aud"


# ------------------------------------------------------------------ 2. --out replacing the store
def _intact(s: Path) -> None:
    st = Store(s)
    assert st.verify()["ok"] and (s / "config.json").exists() and audit.verify(st)["ok"]
    assert st.read("transactions").height == 20000


@pytest.mark.parametrize("where", ["store", "alerts", "tables", "new folder in the store", "parent of the store",
                                   "not a bundle"])
def test_2_evidence_out_refuses_the_store_and_foreign_folders(store, loan, tmp_path, where):
    alerts_before = sorted(p.name for p in (store / "alerts").iterdir())
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    out = {"store": store, "alerts": store / "alerts", "tables": store / "tables" / "transactions",
           "new folder in the store": store / "bundle", "parent of the store": store.parent,
           "not a bundle": foreign}[where]
    r = invoke(store, "evidence", loan, "--out", out, user="ana")
    assert r.exit_code == 2, r.output
    expected = {"not a bundle": "is an existing folder that is not a previous evidence bundle",
                "parent of the store": "contains the flowgraph store"}.get(where, "is inside the flowgraph store")
    assert expected in _msg(r)
    _intact(store)
    assert sorted(p.name for p in (store / "alerts").iterdir()) == alerts_before
    assert (foreign / "keep.txt").read_text() == "mine"


def test_2_a_previous_bundle_or_an_empty_folder_may_be_replaced(store, loan, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    assert invoke(store, "evidence", loan, "--out", out, user="ana").exit_code == 0
    assert invoke(store, "evidence", loan, "--out", out, user="ana").exit_code == 0
    assert invoke(store, "evidence", "verify", out, user="ana").exit_code == 0


def test_2_report_and_cycles_out_refuse_the_store(store, tmp_path):
    r = invoke(store, "report", "--out", store, user="reg")
    assert r.exit_code == 2 and "inside the flowgraph store" in _msg(r)
    r = invoke(store, "report", "--out", store / "alerts", user="reg")
    assert r.exit_code == 2
    r = invoke(store, "cycles", "--out", store / "manifest.json", user="ana")
    assert r.exit_code == 2 and "inside the flowgraph store" in _msg(r)
    _intact(store)
    ok = tmp_path / "rep"
    assert invoke(store, "report", "--out", ok, user="reg").exit_code == 0
    assert invoke(store, "report", "--out", ok, user="reg").exit_code == 0  # its own previous output


# ------------------------------------------------------------------ 3. demo into a live store
def test_3_demo_refuses_an_existing_store(store, tmp_path):
    before = Store(store).snapshot_id
    r = invoke(store, "demo", user="ana")
    assert r.exit_code == 2 and "builds a new store of its own" in _msg(r)
    r = runner.invoke(app, ["demo"], env={"FLOWGRAPH_STORE": str(store)})
    assert r.exit_code == 2 and "FLOWGRAPH_STORE" in _msg(r)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert invoke(busy, "demo").exit_code == 2
    assert Store(store).snapshot_id == before and Store(store).read("accounts").height == 949
    _intact(store)


def test_3_demo_builds_a_new_store(tmp_path):
    r = invoke(tmp_path / "fresh", "demo", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["store"] == str(tmp_path / "fresh") and out["tables"]["accounts"] == 949 and out["score"]["alerts"] > 0


# ------------------------------------------------------------------ 4. cutting the audit log
def test_4_cut_log_is_not_reanchored_by_the_next_command(store):
    log = store / audit.LOG
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-2]))
    cut = log.read_bytes()
    for user in ("ana", "root"):
        r = invoke(store, "status", user=user)
        assert r.exit_code == 1 and "lines were deleted from the end" in _msg(r), r.output
        assert r.stdout == ""  # the command did not run
    assert log.read_bytes() == cut  # nothing appended: the head did not move past the gap
    r = invoke(store, "audit", "verify", user="aud")
    assert r.exit_code == 1 and "deleted from the end" in _msg(r)
    # an admin archives the damaged log and starts a new chain that names it
    r = invoke(store, "audit", "restart", user="root")
    assert r.exit_code == 0, r.output
    first = json.loads((store / audit.LOG).read_bytes().splitlines()[0])
    assert first["command"] == "audit restart" and "deleted from the end" in first["restart"]["problem"]
    assert (store / first["restart"]["archived"] / audit.LOG).read_bytes() == cut
    assert invoke(store, "status", user="ana").exit_code == 0
    assert invoke(store, "audit", "verify", user="aud").exit_code == 0
    assert invoke(store, "audit", "restart", user="root").exit_code == 1  # nothing to restart


@pytest.mark.parametrize("damage", ["unparsable last line", "head deleted", "line glued"])
def test_4_other_damage_stops_commands_too(store, damage):
    log, head = store / audit.LOG, store / audit.HEAD
    data = log.read_bytes()
    if damage == "unparsable last line":
        log.write_bytes(data[:-10] + b"garbage!!\n")
    elif damage == "head deleted":
        head.unlink()
    else:
        log.write_bytes(data[:-1] + b'{"seq": 999}\n')
    r = invoke(store, "status", user="ana")
    assert r.exit_code == 1 and "the command was not run" in _msg(r)
    assert not audit.verify(Store(store))["ok"]


def test_4_rewritten_chain_is_caught_without_an_outside_head(store):
    """Re-hashing the whole chain (here: changing who ran each command) no longer passes:
    the manifest names the audit entry of the command that wrote it."""
    kept = audit.verify(Store(store))["head"]
    entries = _entries(store)
    (store / audit.LOG).unlink()
    (store / audit.HEAD).unlink()
    for e in entries:
        audit.append(Store(store), {k: v for k, v in e.items() if k not in ("seq", "prev", "hash")} | {"user": "mallory"})
    res = audit.verify(Store(store))
    assert not res["ok"] and "manifest was written by the command of audit entry" in res["reason"]
    res = audit.verify(Store(store), head=kept)
    assert not res["ok"]


# ------------------------------------------------------------------ 6. re-hashed evidence (CLI)
def test_6_rehashed_report_fails_evidence_verify(store, loan, tmp_path):
    import hashlib

    out = tmp_path / "b"
    assert invoke(store, "evidence", loan, "--out", out, user="ana").exit_code == 0
    html = (out / "report.html").read_text(encoding="utf-8").replace("</h1>", " (checked, nothing found)</h1>", 1)
    (out / "report.html").write_text(html, encoding="utf-8")
    m = json.loads((out / "manifest.json").read_text())
    m["files"]["report.html"]["sha256"] = hashlib.sha256((out / "report.html").read_bytes()).hexdigest()
    from flowgraph.evidence.bundle import _manifest_hash

    m["manifest_sha256"] = _manifest_hash(m)
    (out / "manifest.json").write_text(json.dumps(m, indent=2))
    r = invoke(store, "evidence", "verify", out, user="ana")
    assert r.exit_code == 1 and "report.html: differs from the bundle regenerated" in _msg(r)


# ------------------------------------------------------------------ 8. smaller ones
def test_8_runs_log_names_the_acting_user(store, monkeypatch):
    monkeypatch.setenv("FLOWGRAPH_USER", "someone-else")
    assert invoke(store, "score", "--all", "--json", user="rita").exit_code == 0
    last = json.loads((store / "runs.jsonl").read_text().splitlines()[-1])
    assert last["user"] == "rita"


EXT, EXT_REPAY = "EXTACC-77665544", "EXTREP-11223344"


@pytest.fixture(scope="module")
def external(tmp_path_factory) -> Path:
    """A tiny bank whose proceeds pass through an account no table lists (an external
    counterparty) and back to the borrower's spouse; repaid from another external account."""
    d = tmp_path_factory.mktemp("external")
    files = {
        "parties.csv": "party_id,kind,name,phone\nPB1,person,Wang Wei,13800000001\nPS1,person,Li Na,13800000002\n",
        "relations.csv": "party_a,party_b,relation,since\nPB1,PS1,spouse,2020-01-01\n",
        "accounts.csv": "account_id,owner_id\nAB1-0001,PB1\nAS1-0002,PS1\n",
        "loans.csv": "loan_id,borrower_id,amount,payment_mode,maturity_date\nLX1,PB1,1000000.00,self,2025-05-01\n",
        "disbursements.csv": "loan_id,account_id,amount,ts\nLX1,AB1-0001,1000000.00,2024-05-01T00:00:00Z\n",
        "transactions.csv": ("tx_id,ts,src_account,dst_account,amount\n"
                             f"TX1,2024-05-01T01:00:00Z,AB1-0001,{EXT},900000.00\n"
                             f"TX2,2024-05-02T00:00:00Z,{EXT},AS1-0002,850000.00\n"),
        "repayments.csv": f"loan_id,account_id,amount,ts\nLX1,{EXT_REPAY},10000.00,2024-06-01T00:00:00Z\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    s = d / "store"
    assert invoke(s, "ingest", d).exit_code == 0
    assert invoke(s, "score", "--all").exit_code == 0
    for name, role in (("ana", "analyst"), ("aud", "auditor"), ("root", "admin")):
        assert invoke(s, "users", "add", name, "--role", role, user="root").exit_code == 0
    return s


@pytest.mark.parametrize("args", [["trace", "LX1", "--json"], ["alerts", "--json"], ["alerts"], ["loan", "LX1", "--json"],
                                  ["history", "--json"], ["account", "AB1-0001", "--json"], ["account", "AB1-0001"],
                                  ["paths", "AB1-0001", "AS1-0002", "--json"], ["trace", "LX1", "--cypher"]])
def test_8_external_counterparties_are_masked_everywhere(external, args):
    wide = {"COLUMNS": "1000"}  # rich tables keep every cell whole
    clear = invoke(external, *args, user="aud", env=wide)
    assert clear.exit_code == 0, clear.output
    secrets = (EXT, EXT_REPAY, "77665544", "11223344", "AB1-0001", "AS1-0002", "PB1", "PS1", "Wang Wei", "13800000001")
    assert any(x in clear.stdout for x in secrets), clear.stdout[:500]  # the case is real
    if args[0] in ("trace", "alerts", "loan", "account") and "--cypher" not in args:
        assert EXT in clear.stdout or EXT_REPAY in clear.stdout, clear.stdout[:500]
    r = invoke(external, *args, user="ana", env=wide)
    assert r.exit_code == 0, r.output
    for secret in secrets:
        assert secret not in r.stdout, (secret, r.stdout[:800])


def test_8_external_counterparty_masked_inside_reasons(external):
    alerts = [json.loads(x) for x in invoke(external, "alerts", "--json", user="aud").stdout.splitlines()]
    reasons = [t for a in alerts for t in a["reasons"]]
    assert any(EXT in t for t in reasons), reasons  # large_outflow names where the money went
    masked = [json.loads(x) for x in invoke(external, "alerts", "--json", user="ana").stdout.splitlines()]
    texts = [t for a in masked for t in a["reasons"]]
    assert texts and not any(EXT in t for t in texts)
    assert any(re.search(r"EXT\*+544", t) for t in texts), texts


def test_8_external_counterparty_masked_in_evidence(external, tmp_path):
    out = tmp_path / "b"
    assert invoke(external, "evidence", "LX1", "--out", out, user="ana").exit_code == 0
    for p in out.iterdir():
        data = p.read_bytes()
        if p.suffix == ".xlsx":
            import zipfile

            with zipfile.ZipFile(p) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        assert b"77665544" not in data and b"AB1-0001" not in data, p.name
    assert invoke(external, "evidence", "verify", out, user="ana").exit_code == 0
