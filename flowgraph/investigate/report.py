"""Portfolio reports: disbursements, alerts and flow-back by period or loan attribute.

``portfolio_tables(store, start, end, by)`` aggregates the disbursements made from day
``start`` to day ``end`` (inclusive) with the alerts on them (latest as-of per alert), per
group and in total (``grade`` groups by the loan's latest classification):

- disbursements (count, amount);
- alerts by level and by rule;
- loans with flow-back (count, share of the group's loans);
- returned amount (flow-back alerts) and its share of the disbursed amount.

``write_report(...)`` writes report.csv, report.xlsx and a self-contained report.html whose
charts (matplotlib, inline SVG) need no network.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from flowgraph.core.errors import UsageError
from flowgraph.core.files import atomic_write_bytes
from flowgraph.core.values import DAY_MS, day_start_ms, format_amount, money_sum
from flowgraph.rules.alerts import read_alerts
from flowgraph.rules.model import LEVELS
from flowgraph.store.embedded import Store

GROUPINGS = ("month", "week", "branch", "industry", "region", "product", "grade")
AMOUNTS = ("disbursed_amount", "returned_amount")  # money columns: exact Int128 sums of minor units
#: the amount columns' headers in report.csv / report.xlsx, which hold decimal amounts
#: (1234.56, as in report.json) rather than minor units
AMOUNT_HEADER = "{} (currency units)"


def _disbursements(store: Store, start: int | None, end: int | None) -> pl.DataFrame:
    loans = store.read("loans", ["loan_id", "borrower_id", "branch", "industry", "region", "product"])
    grades = (
        store.scan("classifications").sort("as_of").group_by("loan_id").agg(pl.col("grade").last()).collect()
    )
    disb = store.read("disbursements")
    if start is not None:
        disb = disb.filter(pl.col("ts") >= start)
    if end is not None:
        disb = disb.filter(pl.col("ts") < end)
    dt = pl.from_epoch("ts", time_unit="ms")
    return (
        disb.join(loans, on="loan_id", how="left")
        .join(grades, on="loan_id", how="left")
        .with_columns(
            dt.dt.strftime("%Y-%m").alias("month"),
            pl.format("{}-W{}", dt.dt.iso_year(), dt.dt.week().cast(pl.Utf8).str.pad_start(2, "0")).alias("week"),
            pl.col("grade").fill_null("unclassified"),
        )
    )


def _aggregate(disb: pl.DataFrame, alerts: pl.DataFrame, rules: list[str]) -> pl.DataFrame:
    """The report's figures per value of the ``group`` column of both frames."""
    base = disb.group_by("group").agg(
        pl.len().alias("disbursements"),
        money_sum(pl.col("amount")).alias("disbursed_amount"),
        pl.col("loan_id").n_unique().alias("loans"),
    )
    fb = alerts.filter(pl.col("kind") == "flow_back")
    fb_stats = fb.group_by("group").agg(
        pl.col("loan_id").n_unique().alias("loans_with_flow_back"),
        money_sum(pl.col("returned_amount")).alias("returned_amount"),
    )
    levels = alerts.group_by("group").agg(
        pl.len().alias("alerts"), *[(pl.col("level") == lv).sum().alias(f"alerts_{lv}") for lv in LEVELS]
    )
    by_rule = alerts.group_by("group").agg(*[(pl.col("rule_id") == r).sum().alias(f"rule_{r}") for r in rules])
    out = base
    for part in (fb_stats, levels, by_rule):
        out = out.join(part, on="group", how="left")
    counts = [c for c in out.columns if c not in ("group", *AMOUNTS)]
    return out.with_columns(
        *[pl.col(c).fill_null(0).cast(pl.Int64) for c in counts],
        *[pl.col(c).fill_null(0).cast(pl.Int128) for c in AMOUNTS],
    ).with_columns(
        (pl.col("loans_with_flow_back") / pl.col("loans")).round(6).alias("flow_back_loan_share"),
        _share(pl.col("returned_amount"), pl.col("disbursed_amount")).alias("returned_share"),
    )


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    """part / whole rounded to 6 places (0 when nothing was disbursed), in float64 from the
    exact Int128 sums."""
    return pl.when(whole > 0).then((part.cast(pl.Float64) / whole.cast(pl.Float64)).round(6)).otherwise(0.0)


@dataclass(frozen=True)
class Selection:
    """The disbursements of the period (with their grouping columns) and the alerts on them."""

    disb: pl.DataFrame
    alerts: pl.DataFrame
    rules: list[str]


def select(store: Store, start: date | None = None, end: date | None = None) -> Selection:
    """Disbursements made from ``start`` to ``end`` (inclusive days) and every alert on
    them (latest as-of per alert), read once for any number of groupings."""
    lo = day_start_ms(start) if start else None
    hi = day_start_ms(end) + DAY_MS if end else None
    disb = _disbursements(store, lo, hi)
    alerts = read_alerts(store).select("alert_id", "disbursement_id", "kind", "rule_id", "level", "returned_amount")
    alerts = alerts.join(disb.select("disbursement_id", "loan_id"), on="disbursement_id", how="inner")
    return Selection(disb, alerts, sorted(set(alerts["rule_id"].to_list())))


def group_tables(sel: Selection, by: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per group, one total row). Amounts in minor units (exact Int128 sums),
    shares as floats.

    The total row is computed over the whole selection, so a loan disbursed in two months
    counts once in the total but in both months.
    """
    if by not in GROUPINGS:
        raise UsageError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    disb = sel.disb.with_columns(pl.col(by).fill_null("(none)").alias("group"))
    alerts = sel.alerts.join(disb.select("disbursement_id", "group"), on="disbursement_id", how="inner")
    groups = _aggregate(disb, alerts, sel.rules).sort("group").rename({"group": by})
    everything = pl.lit("total").alias("group")
    total = _aggregate(disb.with_columns(everything), alerts.with_columns(everything), sel.rules).rename({"group": by})
    if total.height == 0:  # nothing disbursed in the range: a row of zeros
        total = pl.DataFrame([{c: ("total" if c == by else 0.0 if c.endswith("share") else 0) for c in groups.columns}],
                             schema=groups.schema)
    return groups, total


def portfolio_tables(
    store: Store, start: date | None = None, end: date | None = None, by: str = "month"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`group_tables` of :func:`select` (one grouping of one period)."""
    return group_tables(select(store, start, end), by)


def report_json(groups: pl.DataFrame, total: pl.DataFrame, by: str, start: date | None, end: date | None) -> dict:
    """The report as JSON: amounts as decimal strings, one object per group plus totals."""
    def money(row: dict) -> dict:
        return {k: format_amount(v) if k in AMOUNTS else v for k, v in row.items()}

    return {
        "by": by,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "groups": [money(r) for r in groups.iter_rows(named=True)],
        "totals": money({k: v for k, v in total.row(0, named=True).items() if k != by}),
    }


def report_data(store: Store, start: date | None = None, end: date | None = None, by: str = "month") -> dict:
    """:func:`portfolio_tables` as JSON (what ``flowgraph report --json`` prints)."""
    sel = select(store, start, end)
    return report_json(*group_tables(sel, by), by, start, end) | {"dispositions": _dispositions(store, sel)}


def _dispositions(store: Store, sel: Selection) -> dict:
    """Per rule: the cases of the period's alerts by status and the measured precision."""
    from flowgraph.investigate.cases import dispositions

    return dispositions(store, sel.alerts["alert_id"].to_list())


# ------------------------------------------------------------------ files and charts
def decimal_amounts(df: pl.DataFrame) -> pl.DataFrame:
    """The report table for files: amounts as exact decimals (Decimal(38, 2)) under headers
    naming the unit, the same figures as report.json.

    >>> df = pl.DataFrame({"disbursed_amount": [123456], "returned_amount": [5]}, schema=dict.fromkeys(AMOUNTS, pl.Int128))
    >>> decimal_amounts(df).write_csv().splitlines()
    ['disbursed_amount (currency units),returned_amount (currency units)', '1234.56,0.05']
    """
    exact = [
        pl.col(c).map_elements(format_amount, return_dtype=pl.Utf8).cast(pl.Decimal(38, 2)).alias(AMOUNT_HEADER.format(c))
        for c in AMOUNTS
    ]
    return df.with_columns(exact).select([AMOUNT_HEADER.format(c) if c in AMOUNTS else c for c in df.columns])
def _svg(fig) -> str:
    buf = io.StringIO()
    with warnings.catch_warnings():
        # text stays text in the SVG (svg.fonttype none) and the browser draws it with its own
        # CJK-capable fonts; matplotlib only measures it with DejaVu and warns about 中文 names
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # same data → same bytes
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined


def charts(sel: Selection) -> dict[str, str]:
    """Three inline SVG charts: amounts by month, flow-back share by industry and by region,
    alert levels by month."""
    import matplotlib

    matplotlib.use("Agg")
    # the CJK families are for the browser; their absence here is expected, not news
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    style = {
        "svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "flowgraph",
        # names the browser falls back through for Chinese branch/region/industry labels
        "font.family": ["DejaVu Sans", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "sans-serif"],
    }
    out = {}
    month = group_tables(sel, "month")[0]
    with plt.rc_context(style):  # the caller's matplotlib settings stay as they were
        fig, ax = plt.subplots(figsize=(8, 3))
        x = range(month.height)
        ax.bar([i - 0.2 for i in x], (month["disbursed_amount"] / 100).to_list(), width=0.4, label="disbursed")
        ax.bar([i + 0.2 for i in x], (month["returned_amount"] / 100).to_list(), width=0.4, label="returned (flow-back)")
        ax.set_xticks(list(x), month["month"].to_list(), rotation=45, ha="right")
        ax.set_title("Disbursed and returned amount by month")
        ax.legend()
        out["by_period"] = _svg(fig)
        plt.close(fig)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3))
        for ax, by in zip(axes, ("industry", "region"), strict=True):
            df = group_tables(sel, by)[0].sort("flow_back_loan_share", descending=True).head(15)
            ax.barh(df[by].to_list()[::-1], df["flow_back_loan_share"].to_list()[::-1])
            ax.set_title(f"Share of loans with flow-back by {by}")
            ax.set_xlim(0, 1)
        out["shares"] = _svg(fig)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(8, 3))
        bottom = [0] * month.height
        for lv, colour in zip(LEVELS, ("#c0392b", "#e67e22", "#f1c40f"), strict=True):
            vals = month[f"alerts_{lv}"].to_list()
            ax.bar(list(x), vals, bottom=bottom, label=lv, color=colour)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(list(x), month["month"].to_list(), rotation=45, ha="right")
        ax.set_title("Alerts by level and month of disbursement")
        ax.legend()
        out["levels"] = _svg(fig)
        plt.close(fig)
    return out


def write_report(store: Store, out_dir: str | Path, start: date | None, end: date | None, by: str) -> dict:
    """report.csv, report.xlsx, report.json and report.html (charts inline, no network) in
    ``out_dir``; returns the file names and the report (:func:`report_data`'s shape)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from xlsxwriter import Workbook

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sel = select(store, start, end)
    groups, total = group_tables(sel, by)
    data = report_json(groups, total, by, start, end) | {"dispositions": _dispositions(store, sel)}
    df = decimal_amounts(pl.concat([groups, total], how="vertical_relaxed"))  # the total row last, as in the HTML
    atomic_write_bytes(out_dir / "report.csv", df.write_csv().encode())
    tmp = out_dir / ".report.xlsx.tmp"
    with Workbook(str(tmp)) as wb:
        # a fixed creation time: the same data must give the same bytes
        wb.set_properties({"created": datetime(2000, 1, 1, tzinfo=UTC), "title": f"flowgraph portfolio report by {by}"})
        df.write_excel(wb, worksheet="report", autofit=True)
    tmp.replace(out_dir / "report.xlsx")
    env = Environment(loader=PackageLoader("flowgraph.investigate", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("portfolio.html.j2").render(
        data=data, columns=groups.columns, charts=charts(sel),
        snapshot_id=store.snapshot_id, by=by,
    )
    atomic_write_bytes(out_dir / "report.html", html.encode())
    atomic_write_bytes(out_dir / "report.json", (json.dumps(data, indent=2) + "\n").encode())
    return {"out": str(out_dir), "files": ["report.csv", "report.xlsx", "report.html", "report.json"], "report": data}
