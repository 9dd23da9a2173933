"""The nightly batch: score the disbursements of a day against a rule pack, write alerts.

``score_days(store, [D], pack)`` scores, as of the end of day D (UTC), every disbursement
made on D and every earlier one whose rule window is still open on D. Only data up to the
end of D are used (the index is cut at the end of D: :func:`flowgraph.graph.index_as_of`), so re-running a
date gives the same alerts even after later data arrived. Alerts of D go to
``<store>/alerts/date=D/alerts.parquet`` with a ``_manifest.json`` written last; the
partition is built in a temp folder and renamed into place, replacing any earlier run
with identical content.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from . import __version__
from .flow_back import find_flow_back_batch
from .graph import AccountLookup, index_as_of, load_or_build_index
from .links import PartyGraph, load_party_graph
from .rulepack import Rule, RulePack
from .scoring import flow_back_features, flow_back_reason, score
from .store import Store, replace_directory
from .trace import TraceOptions, hop_json, hop_records, linked_targets
from .values import DAY_MS, day_start_ms, format_amount, format_ts

HOP = pl.Struct({"tx_id": pl.Utf8, "src": pl.Utf8, "dst": pl.Utf8, "ts": pl.Int64, "amount": pl.Int64})
PATH = pl.Struct({"hops": pl.List(HOP)})
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.Utf8(),
    "loan_id": pl.Utf8(),
    "disbursement_id": pl.Utf8(),
    "borrower_id": pl.Utf8(),
    "account": pl.Utf8(),
    "disbursed_amount": pl.Int64(),
    "disbursed_ts": pl.Int64(),
    "rule_id": pl.Utf8(),
    "rule_name": pl.Utf8(),
    "kind": pl.Utf8(),
    "rule_version": pl.Utf8(),
    "ruleset_id": pl.Utf8(),
    "ruleset_hash": pl.Utf8(),
    "score": pl.Float64(),
    "level": pl.Utf8(),
    "returned_amount": pl.Int64(),
    "return_ratio": pl.Float64(),
    "first_return_ts": pl.Int64(),
    "path_count": pl.Int64(),
    "min_hops": pl.Int64(),
    "truncated": pl.Boolean(),
    "paths": pl.List(PATH),
    "reasons": pl.List(pl.Utf8),
    "as_of": pl.Utf8(),
    "scored_at": pl.Int64(),
}
LEVELS = ("high", "medium", "low")


def alert_id_of(rule_id: str, disbursement_id: str) -> str:
    """Stable across runs and days: one alert per (rule, disbursement)."""
    return hashlib.sha256(f"{rule_id}\0{disbursement_id}".encode()).hexdigest()[:24]


def rule_window_ms(rule: Rule) -> int:
    p = rule.params
    if "window_days" in p:
        return int(round(float(p["window_days"]) * DAY_MS))
    if "within_hours" in p:
        return int(round(float(p["within_hours"]) * 3_600_000))
    return 30 * DAY_MS


@dataclass
class Context:
    """What every rule of a run needs, loaded once."""

    store: Store
    pack: RulePack
    index: object
    lookup: AccountLookup
    graph: PartyGraph
    disb: pl.DataFrame  # all disbursements with borrower_id and payment_mode
    tx: pl.DataFrame | None = None

    @classmethod
    def load(cls, store: Store, pack: RulePack, progress: Callable[[str], None] | None = None) -> Context:
        index, _ = load_or_build_index(store, progress=progress)
        loans = store.scan("loans")
        loan_cols = ["loan_id", "borrower_id", "payment_mode"]
        disb = (
            store.scan("disbursements")
            .join(loans.select(loan_cols), on="loan_id", how="left")
            .with_columns(pl.col("payment_mode").fill_null("self"))
            .sort("ts", "disbursement_id")
            .collect()
        )
        return cls(store, pack, index, AccountLookup(index.account_ids), load_party_graph(store), disb)

    @functools.cached_property
    def loans(self) -> pl.DataFrame:
        return self.store.read("loans", ["loan_id", "borrower_id", "amount"])

    @functools.cached_property
    def loan_ids(self) -> list[str]:
        return self.loans["loan_id"].to_list()

    @functools.cached_property
    def repayments(self) -> pl.DataFrame:
        """Repayments with the row of their loan in :attr:`loans` (-1 when unknown)."""
        rows = pl.DataFrame({"loan_id": self.loan_ids, "loan_row": range(len(self.loan_ids))})
        return (
            self.store.read("repayments", ["loan_id", "account_id", "amount", "ts"])
            .join(rows, on="loan_id", how="left")
            .with_columns(pl.col("loan_row").fill_null(-1))
            .sort("ts", "account_id", "loan_id")
        )

    @functools.cached_property
    def category_names(self) -> tuple[str, ...]:
        cats = self.store.read("accounts", ["category"])["category"].drop_nulls().unique().sort()
        return tuple(cats.to_list())

    @functools.cached_property
    def account_category(self) -> np.ndarray:
        """Category code per dense account (index into :attr:`category_names`, -1 none)."""
        codes = np.full(len(self.lookup.ids), -1, np.int16)
        acc = self.store.read("accounts", ["account_id", "category"]).drop_nulls()
        code_of = {c: i for i, c in enumerate(self.category_names)}
        dense = self.lookup.many(acc["account_id"].to_list())
        for d, c in zip(dense.tolist(), acc["category"].to_list(), strict=True):
            if d >= 0:
                codes[d] = code_of[c]
        return codes

    def hop_rows(self, rows: np.ndarray) -> dict[int, dict]:
        if self.tx is None:
            self.tx = self.store.read("transactions", ["tx_id", "src_account", "dst_account", "ts", "amount"])
        return hop_records(self.tx, rows)


def borrower_targets(ctx: Context, borrowers: list[str], depth: int, types) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Borrower-linked accounts per disbursement (see :func:`flowgraph.trace.linked_targets`)."""
    return linked_targets(ctx.graph, ctx.lookup, borrowers, depth, types)


def _flow_back_alerts(ctx: Context, index, rule: Rule, sel: pl.DataFrame, threads) -> list[dict]:
    opts = TraceOptions.from_rule_params(rule.params)
    p = opts.params
    borrowers = sel["borrower_id"].fill_null("").to_list()
    indptr, ids, linked_of = borrower_targets(ctx, borrowers, opts.link_depth, opts.relation_types)
    accounts = ctx.lookup.many(sel["account_id"].to_list()).astype(np.int64)
    t0s = sel["ts"].to_numpy().astype(np.int64)
    amounts = sel["amount"].to_numpy().astype(np.int64)
    batch = find_flow_back_batch(index, accounts, t0s, amounts, indptr, ids, p, threads=threads)
    fired = np.flatnonzero(batch.path_count > 0)
    hops = ctx.hop_rows(np.asarray(batch.hop_rows))
    out = []
    for i in fired.tolist():
        row = sel.row(i, named=True)
        paths, ends = [], []
        for k in range(batch.path_indptr[i], batch.path_indptr[i + 1]):
            path = [hops[int(r)] for r in batch.hop_rows[batch.hop_indptr[k] : batch.hop_indptr[k + 1]]]
            paths.append({"hops": path})
            ends.append(path[-1]["dst"])
        returned, amount = int(batch.returned_amount[i]), int(amounts[i])
        first = int(batch.first_return_ts[i])
        min_hops = min(len(x["hops"]) for x in paths)
        linked = linked_of[i]
        borrower_owned = set(ctx.graph.owned.get(row["borrower_id"] or "", ()))
        own = any(e in borrower_owned for e in ends)
        # the reason names the account of the earliest return
        first_end = next(x["hops"][-1]["dst"] for x in paths)
        feats = flow_back_features(returned / amount if amount else 0.0, first, int(t0s[i]), p.window_ms, own, min_hops, p.max_hops)
        s = score(rule, feats)
        out.append(
            {
                "disb": row, "rule": rule, "score": s, "returned_amount": returned,
                "return_ratio": round(returned / amount, 6) if amount else 0.0,
                "first_return_ts": first, "path_count": int(batch.path_count[i]), "min_hops": min_hops,
                "truncated": bool(batch.truncated[i]), "paths": paths,
                "reasons": [
                    flow_back_reason(returned, amount, linked.get(first_end), min_hops, first - int(t0s[i]), bool(batch.truncated[i]))
                ],
            }
        )
    return out


def _detector_alerts(ctx: Context, index, rule: Rule, sel: pl.DataFrame, threads) -> list[dict]:
    from .rule_runners import run_detector  # the non-flow-back kinds

    return run_detector(ctx, index, rule, sel, threads)


def _select(ctx: Context, rule: Rule, day: date, every: bool = False) -> pl.DataFrame:
    """Disbursements a rule looks at on ``day``: made that day or with the window still
    open (``every``: all made up to that day, for backfills)."""
    start = day_start_ms(day)
    end = start + DAY_MS
    w = rule_window_ms(rule)
    opened = pl.lit(True) if every else pl.col("ts") + w >= start
    return ctx.disb.filter(
        (pl.col("ts") < end) & opened & pl.col("payment_mode").is_in(list(rule.payment_modes))
    )


def last_data_day(store: Store) -> date:
    """The day of the latest transaction or disbursement (for ``score --all``)."""
    latest = max(
        store.scan("transactions").select(pl.col("ts").max()).collect().item() or 0,
        store.scan("disbursements").select(pl.col("ts").max()).collect().item() or 0,
    )
    if not latest:
        raise ValueError("the store holds no transactions or disbursements to score")
    return date.fromisoformat(format_ts(latest)[:10])


def score_day(
    ctx: Context, day: date, threads: int | None = None, progress: Callable[[str], None] | None = None,
    every: bool = False,
) -> tuple[pl.DataFrame, int]:
    """Alerts of one day (not written) and the number of disbursements considered."""
    as_of = day.isoformat()
    cutoff = day_start_ms(day) + DAY_MS
    index = index_as_of(ctx.index, cutoff)  # nothing booked after the as-of day is seen
    found: list[dict] = []
    considered: set[str] = set()
    for rule in ctx.pack.rules:
        if not rule.enabled or rule.kind == "classification":  # classification runs in `classify`
            continue
        sel = _select(ctx, rule, day, every)
        considered.update(sel["disbursement_id"].to_list())
        if sel.height == 0:
            continue
        if progress:
            progress(f"{as_of}: {rule.id} on {sel.height} disbursement(s)")
        runner = _flow_back_alerts if rule.kind == "flow_back" else _detector_alerts
        found.extend(runner(ctx, index, rule, sel, threads))
    rows = [_alert_row(ctx, f, as_of, cutoff) for f in found]
    df = pl.DataFrame(rows, schema=ALERT_SCHEMA) if rows else pl.DataFrame(schema=ALERT_SCHEMA)
    return df.sort("rule_id", "disbursement_id"), len(considered)


def _alert_row(ctx: Context, f: dict, as_of: str, cutoff: int) -> dict:
    d, rule = f["disb"], f["rule"]
    return {
        "alert_id": alert_id_of(rule.id, d["disbursement_id"]),
        "loan_id": d["loan_id"],
        "disbursement_id": d["disbursement_id"],
        "borrower_id": d["borrower_id"],
        "account": d["account_id"],
        "disbursed_amount": d["amount"],
        "disbursed_ts": d["ts"],
        "rule_id": rule.id,
        "rule_name": rule.name,
        "kind": rule.kind,
        "rule_version": rule.version,
        "ruleset_id": f"{ctx.pack.id}@{ctx.pack.version}",
        "ruleset_hash": ctx.pack.hash,
        "score": f["score"],
        "level": rule.level_of(f["score"]),
        "returned_amount": f.get("returned_amount"),
        "return_ratio": f.get("return_ratio"),
        "first_return_ts": f.get("first_return_ts"),
        "path_count": f.get("path_count", len(f.get("paths", []))),
        "min_hops": f.get("min_hops"),
        "truncated": f.get("truncated", False),
        "paths": f.get("paths", []),
        "reasons": f["reasons"],
        "as_of": as_of,
        # the logical scoring time (end of the as-of day), not the wall clock: re-runs of a
        # date are byte-identical; the wall clock of each run is in runs.jsonl
        "scored_at": cutoff - 1,
    }


def partition_dir(store: Store, day: date) -> Path:
    return store.root / "alerts" / f"date={day.isoformat()}"


def write_partition(store: Store, day: date, alerts: pl.DataFrame, manifest: dict) -> Path:
    """Write a date partition aside, then swap it into place."""
    final = partition_dir(store, day)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        alerts.write_parquet(tmp / "alerts.parquet", compression="zstd", statistics=True)
        (tmp / "_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def score_days(
    store: Store,
    days: list[date],
    pack: RulePack,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    on_day: Callable[[date], None] | None = None,
    every: bool = False,
) -> dict:
    """Score each day, write its partition, append a line to ``runs.jsonl``; return a summary.

    ``every``: score every disbursement made up to the day, not only those still in
    their window (a backfill; ``flowgraph score --all``).
    """
    started = time.time()
    ctx = Context.load(store, pack, progress)
    by_rule: Counter = Counter()
    by_level: Counter = Counter()
    n_disb = n_alerts = 0
    partitions = []
    for day in days:
        alerts, considered = score_day(ctx, day, threads, progress, every)
        manifest = {
            "as_of": day.isoformat(),
            "mode": "all" if every else "open-window",
            "snapshot_id": store.snapshot_id,
            "ruleset_id": f"{pack.id}@{pack.version}",
            "ruleset_hash": pack.hash,
            "flowgraph_version": __version__,
            "disbursements": considered,
            "alerts": alerts.height,
            "by_rule": dict(sorted(Counter(alerts["rule_id"].to_list()).items())),
            "by_level": {lv: int((alerts["level"] == lv).sum()) for lv in LEVELS},
        }
        partitions.append(str(write_partition(store, day, alerts, manifest)))
        n_disb += considered
        n_alerts += alerts.height
        by_rule.update(alerts["rule_id"].to_list())
        by_level.update(alerts["level"].to_list())
        if on_day:
            on_day(day)
    summary = {
        "disbursements": n_disb,
        "alerts": n_alerts,
        "by_rule": dict(sorted(by_rule.items())),
        "by_level": {lv: by_level.get(lv, 0) for lv in LEVELS},
        "seconds": round(time.time() - started, 3),
    }
    with contextlib.suppress(OSError):
        store.append_log(
            "runs.jsonl",
            {
                "started_at": format_ts(int(started * 1000)),
                "dates": [d.isoformat() for d in days],
                "snapshot_id": store.snapshot_id,
                "ruleset_hash": pack.hash,
                "user": os.environ.get("FLOWGRAPH_USER") or getpass.getuser(),
                "partitions": partitions,
                **summary,
            },
        )
    return summary


# ------------------------------------------------------------------ reading alerts
def read_alerts(
    store: Store, day: date | None = None, level: str | None = None, rule: str | None = None,
    loan: str | None = None, latest: bool = True, until: date | None = None,
) -> pl.DataFrame:
    """Alerts of one partition, or of all (latest as_of per alert when ``latest``);
    ``until`` keeps only what was known at the end of that day (partitions up to it)."""
    base = store.root / "alerts"
    files = [partition_dir(store, day) / "alerts.parquet"] if day else sorted(base.glob("date=*/alerts.parquet"))
    if until is not None:
        files = [f for f in files if f.parent.name[len("date="):] <= until.isoformat()]
    files = [f for f in files if f.exists()]
    if not files:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    df = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    if latest and day is None:
        df = df.sort("as_of").unique(subset=["alert_id"], keep="last")
    if level:
        df = df.filter(pl.col("level") == level)
    if rule:
        df = df.filter(pl.col("rule_id") == rule)
    if loan:
        df = df.filter(pl.col("loan_id") == loan)
    return df.sort(["score", "alert_id"], descending=[True, False])


def alert_json(row: dict) -> dict:
    """An alert row → DESIGN.md JSON: amounts as decimal strings, times ISO-8601 UTC."""
    def ts(x):
        return format_ts(x) if x is not None and x >= 0 else None

    def amt(x):
        return format_amount(x) if x is not None else None

    out = dict(row)
    out["disbursed_amount"] = amt(row["disbursed_amount"])
    out["disbursed_ts"] = ts(row["disbursed_ts"])
    out["returned_amount"] = amt(row["returned_amount"])
    out["first_return_ts"] = ts(row["first_return_ts"])
    out["scored_at"] = ts(row["scored_at"])
    out["paths"] = [
        {"hops": [hop_json(h) for h in p["hops"]]}
        for p in row["paths"] or []
    ]
    return out
