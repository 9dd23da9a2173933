"""Portfolio report: figures equal an independent recomputation from the store's tables and
alert partitions; files written; HTML with its charts renders in headless Chromium."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from tests.helpers.browser import colours_and_spread, dump_dom, needs_chromium, screenshot, svg_page

runner = CliRunner()


def cli(store, *args):
    res = runner.invoke(app, ["--store", str(store.root), *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def _month(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def _week(ms: int) -> str:
    y, w, _ = datetime.fromtimestamp(ms / 1000, UTC).isocalendar()
    return f"{y}-W{w:02d}"


def expected(store, by: str, start: date | None = None, end: date | None = None) -> tuple[dict, dict]:
    """Plain-Python recomputation: rows as dicts, alerts straight from the partition files
    (latest as_of per alert_id), no code shared with flowgraph.report."""
    loans = {r["loan_id"]: r for r in store.read("loans").iter_rows(named=True)}
    grade: dict[str, tuple[int, str]] = {}
    for r in store.read("classifications").iter_rows(named=True):
        if r["loan_id"] not in grade or r["as_of"] >= grade[r["loan_id"]][0]:
            grade[r["loan_id"]] = (r["as_of"], r["grade"])
    lo = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000) if start else None
    hi = int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp() * 1000) + 86_400_000 if end else None
    group_of = {}
    for d in store.read("disbursements").iter_rows(named=True):
        if (lo is not None and d["ts"] < lo) or (hi is not None and d["ts"] >= hi):
            continue
        loan = loans.get(d["loan_id"], {})
        key = {"month": _month(d["ts"]), "week": _week(d["ts"]),
               "grade": grade.get(d["loan_id"], (0, "unclassified"))[1]}.get(by) or loan.get(by) or "(none)"
        group_of[d["disbursement_id"]] = (key, d)
    latest: dict[str, dict] = {}
    for f in sorted((store.root / "alerts").glob("date=*/alerts.parquet")):
        for a in pl.read_parquet(f).iter_rows(named=True):
            if a["alert_id"] not in latest or a["as_of"] >= latest[a["alert_id"]]["as_of"]:
                latest[a["alert_id"]] = a
    acc = defaultdict(lambda: {"disb": 0, "amount": 0, "loans": set(), "fb_loans": set(), "returned": 0,
                               "alerts": 0, "levels": defaultdict(int), "rules": defaultdict(int)})
    total = acc["__total__"]
    for key, d in group_of.values():
        for g in (acc[key], total):
            g["disb"] += 1
            g["amount"] += d["amount"]
            g["loans"].add(d["loan_id"])
    for a in latest.values():
        if a["disbursement_id"] not in group_of:
            continue
        key = group_of[a["disbursement_id"]][0]
        for g in (acc[key], total):
            g["alerts"] += 1
            g["levels"][a["level"]] += 1
            g["rules"][a["rule_id"]] += 1
            if a["kind"] == "flow_back":
                g["fb_loans"].add(a["loan_id"])
                g["returned"] += a["returned_amount"]
    out = {}
    for key, g in acc.items():
        out[key] = {
            "disbursements": g["disb"], "disbursed_amount": g["amount"], "loans": len(g["loans"]),
            "loans_with_flow_back": len(g["fb_loans"]), "returned_amount": g["returned"], "alerts": g["alerts"],
            **{f"alerts_{lv}": g["levels"][lv] for lv in ("high", "medium", "low")},
            **{f"rule_{r}": n for r, n in g["rules"].items()},
        }
    tot = out.pop("__total__")
    return out, tot


def _minor(text: str) -> int:
    return int(Decimal(text) * 100)


def _check(got_row: dict, want: dict) -> None:
    for k, v in want.items():
        g = got_row[k]
        if k in ("disbursed_amount", "returned_amount"):
            g = _minor(g)
        assert g == v, (k, g, v)
    assert got_row["flow_back_loan_share"] == pytest.approx(want["loans_with_flow_back"] / want["loans"], abs=1e-6)
    assert got_row["returned_share"] == pytest.approx(want["returned_amount"] / want["disbursed_amount"], abs=1e-6)


@pytest.mark.parametrize(
    "by,start,end",
    [("month", None, None), ("week", date(2024, 3, 1), date(2024, 6, 30)), ("branch", None, None),
     ("industry", None, None), ("region", date(2024, 5, 1), None), ("product", None, None), ("grade", None, None)],
)
def test_report_json_equals_independent_recomputation(scored_sample, by, start, end):
    args = ["report", "--by", by, "--json"]
    if start:
        args += ["--from", start.isoformat()]
    if end:
        args += ["--to", end.isoformat()]
    data = json.loads(cli(scored_sample, *args))
    want_groups, want_total = expected(scored_sample, by, start, end)
    got = {g[by]: g for g in data["groups"]}
    assert set(got) == set(want_groups)
    for key, want in want_groups.items():
        _check(got[key], want)
    _check(data["totals"], want_total)
    assert want_total["alerts"] > 0 and want_total["loans_with_flow_back"] > 0  # the sample has both


def test_month_totals_agree_with_the_store(scored_sample):
    """The issue's check: --by month totals = the store's disbursements and alerts."""
    data = json.loads(cli(scored_sample, "report", "--by", "month", "--json"))
    disb = scored_sample.read("disbursements")
    alerts = json.loads("[" + ",".join(cli(scored_sample, "alerts", "--json").splitlines()) + "]")
    assert data["totals"]["disbursements"] == disb.height
    assert _minor(data["totals"]["disbursed_amount"]) == disb["amount"].sum()
    assert data["totals"]["alerts"] == len(alerts)
    assert sum(g["disbursements"] for g in data["groups"]) == disb.height
    assert sum(g["alerts"] for g in data["groups"]) == len(alerts)
    fb = [a for a in alerts if a["kind"] == "flow_back"]
    assert _minor(data["totals"]["returned_amount"]) == sum(_minor(a["returned_amount"]) for a in fb)
    assert data["totals"]["loans_with_flow_back"] == len({a["loan_id"] for a in fb})


def test_empty_range_gives_zero_totals(scored_sample):
    data = json.loads(cli(scored_sample, "report", "--from", "2031-01-01", "--to", "2031-12-31", "--json"))
    assert data["groups"] == []
    assert data["totals"]["disbursements"] == 0 and data["totals"]["returned_share"] == 0


def test_bad_grouping_is_a_usage_error(scored_sample):
    res = runner.invoke(app, ["--store", str(scored_sample.root), "report", "--by", "colour"])
    assert res.exit_code == 2


@pytest.fixture(scope="module")
def written(scored_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("portfolio") / "rep"
    cli(scored_sample, "report", "--by", "region", "--out", str(out))
    return out


def test_files_agree_and_are_deterministic(scored_sample, written, tmp_path):
    data = json.loads((written / "report.json").read_text())
    rows = list(csv.DictReader((written / "report.csv").open(encoding="utf-8")))
    assert [r["region"] for r in rows] == [g["region"] for g in data["groups"]] + ["total"]
    # the same decimal amounts as report.json, the unit in the header
    assert rows[-1]["disbursed_amount (currency units)"] == data["totals"]["disbursed_amount"]
    assert [r["returned_amount (currency units)"] for r in rows[:-1]] == [g["returned_amount"] for g in data["groups"]]
    ws = openpyxl.load_workbook(written / "report.xlsx")["report"]
    assert ws.max_row == len(rows) + 1 and ws.cell(1, 1).value == "region"
    header = [c.value for c in ws[1]]
    col = header.index("disbursed_amount (currency units)") + 1
    assert f"{ws.cell(ws.max_row, col).value:.2f}" == data["totals"]["disbursed_amount"]
    again = tmp_path / "again"
    cli(scored_sample, "report", "--by", "region", "--out", str(again))
    for name in ("report.csv", "report.xlsx", "report.html", "report.json"):
        assert (again / name).read_bytes() == (written / name).read_bytes(), name


def test_html_is_self_contained(written):
    html = (written / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "network fetch in report.html"
    assert "<script" not in html


@needs_chromium
def test_html_renders_with_charts(written, tmp_path):
    html = written / "report.html"
    dom, errors = dump_dom(html, tmp_path / "p1")
    assert not errors, errors
    for chart in ("chart-period", "chart-shares", "chart-levels"):
        assert f'id="{chart}"' in dom
    assert dom.count("<svg") == 3 and "上海" in dom  # a region name rendered as text
    colours, variance = colours_and_spread(screenshot(html, tmp_path / "page.png", tmp_path / "p2"))
    assert colours > 20 and variance > 50, (colours, variance)
    for i, svg in enumerate(re.findall(r"<svg.*?</svg>", html.read_text(encoding="utf-8"), re.S)):
        page = svg_page(svg, tmp_path / f"chart{i}.html")
        colours, variance = colours_and_spread(screenshot(page, tmp_path / f"chart{i}.png", tmp_path / f"p{i + 3}", "1000,450"))
        assert colours > 5 and variance > 20, (i, colours, variance)
