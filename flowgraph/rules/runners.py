"""Run the non-flow-back rule kinds of a pack on a day's disbursements.

Each runner builds the detector's inputs from the store (through the batch
:class:`~flowgraph.rules.context.Context`), calls the detector from :mod:`flowgraph.rules.detectors`,
and turns its hits into alert findings with a score and a sentence a person can read.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from flowgraph.core.values import DAY_MS, HOUR_MS, format_amount_grouped
from flowgraph.rules import detectors as det
from flowgraph.rules.model import Rule
from flowgraph.rules.scoring import duration_text, generic_features, score


def _params(rule: Rule):
    cls = det.PARAMS_BY_KIND[rule.kind]
    return cls(**rule.params)


def _paths(ctx, evidence: list[np.ndarray]) -> list[dict]:
    if not evidence:
        return []
    rows = np.concatenate(evidence)
    hops = ctx.hop_rows(rows)
    return [{"hops": [hops[int(r)] for r in path]} for path in evidence]


def _account(ctx, dense: int) -> str:
    return str(ctx.lookup.ids[dense]) if 0 <= dense < len(ctx.lookup.ids) else "?"


def _hops_text(h: int) -> str:
    return f"{h} hop{'s' if h != 1 else ''}"


def _reason(ctx, kind: str, hits: det.Hits, i: int, disbursed: int, t0: int, rule: Rule, sel: pl.DataFrame) -> str:
    d = hits.detail[i]
    amt = int(hits.amount[i])
    when = duration_text(max(0, int(hits.first_ts[i]) - t0)) if hits.first_ts[i] >= 0 else ""
    share = f"{hits.metric[i]:.0%}"
    if kind == "repay_with_loan":
        loan = ctx.loan_ids[d["repaid_loan_row"]] if "repaid_loan_row" in d else "?"
        same = " (the same loan)" if loan == sel["loan_id"][i] else ""
        where = "the disbursement account" if hits.hops[i] == 0 else f"{_account(ctx, d['account'])} after {_hops_text(int(hits.hops[i]))}"
        return (f"{format_amount_grouped(amt)} ({share} of the {format_amount_grouped(disbursed)} disbursed) "
                f"repaid loan {loan}{same} from {where} {when}")
    if kind == "prohibited_destination":
        return (f"{share} of the {format_amount_grouped(disbursed)} disbursed reached a {d['category']} account "
                f"({_account(ctx, d['account'])}) after {_hops_text(int(hits.hops[i]))} {when}")
    if kind == "rapid_pass_through":
        p = rule.params
        return (f"account {_account(ctx, d['account'])} forwarded {d['forwarded_share']:.0%} of the "
                f"{format_amount_grouped(amt)} it received from the proceeds within {p['within_hours']:g} hours")
    if kind == "large_outflow":
        return (f"{format_amount_grouped(amt)} ({share} of the {format_amount_grouped(disbursed)} disbursed) left "
                f"in one transfer to {_account(ctx, d['account'])} {when} of the disbursement")
    if kind == "transfer_cycle":
        return (f"the proceeds fed a cycle of {d['cycle_length']} transfers through {_account(ctx, d['account'])} "
                f"{when}" + (" (search budget hit)" if d.get("truncated") else ""))
    if kind == "split_disbursement":
        loans = ", ".join(ctx.loan_ids[x] for x in d["loans"])
        p = rule.params
        return (f"{d['n_loans']} loans of linked borrowers just below {format_amount_grouped(p['threshold'])} "
                f"within {p['window_days']:g} days ({loans}), {format_amount_grouped(amt)} in all")
    return kind


def _split_groups(ctx, borrower_ids: list[str]) -> np.ndarray:
    """Group per borrower: components of borrower–borrower links (one relation step)."""
    pos = {b: i for i, b in enumerate(borrower_ids)}
    parent = list(range(len(borrower_ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for b, i in pos.items():
        for other in ctx.graph.linked_parties([b], 1):
            j = pos.get(other)
            if j is not None:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(len(borrower_ids))], np.int64)


def _run_split(ctx, rule: Rule, sel: pl.DataFrame) -> det.Hits:
    loans = ctx.loans
    loan_row = {lid: i for i, lid in enumerate(ctx.loan_ids)}
    borrowers = sorted(set(loans["borrower_id"].drop_nulls().to_list()))
    b_row = {b: i for i, b in enumerate(borrowers)}
    start = ctx.disb.group_by("loan_id").agg(pl.col("ts").min().alias("start"))
    starts = dict(zip(start["loan_id"].to_list(), start["start"].to_list(), strict=True))
    lb = np.array([b_row.get(b, -1) if b else -1 for b in loans["borrower_id"].to_list()], np.int64)
    keep = lb >= 0
    groups = _split_groups(ctx, borrowers)
    # loans without a borrower get their own group each, so they never pool together
    groups_ext = np.concatenate([groups, -1 - np.arange(len(lb), dtype=np.int64)])
    lb_final = np.where(keep, lb, len(groups) + np.arange(len(lb)))
    lt = np.array([starts.get(lid, 0) for lid in ctx.loan_ids], np.int64)
    lod = np.array([loan_row[x] for x in sel["loan_id"].to_list()], np.int64)
    return det.detect_split_disbursement(lod, lb_final, loans["amount"].to_numpy().astype(np.int64), lt, groups_ext, _params(rule))


def run_detector(ctx, index, rule: Rule, sel: pl.DataFrame, threads: int | None = None) -> list[dict]:
    """Alert findings of one non-flow-back rule on the selected disbursements."""
    import numba

    from flowgraph.rules.context import borrower_targets

    if threads:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    kind = rule.kind
    params = _params(rule)
    accounts = ctx.lookup.many(sel["account_id"].to_list()).astype(np.int64)
    t0 = sel["ts"].to_numpy().astype(np.int64)
    amount = sel["amount"].to_numpy().astype(np.int64)
    if kind == "split_disbursement":
        hits = _run_split(ctx, rule, sel)
    else:
        indptr, ids, _ = borrower_targets(ctx, sel["borrower_id"].fill_null("").to_list(), 1, None)
        disb = det.Disbursements(accounts, t0, amount, indptr, ids)
        if kind == "repay_with_loan":
            rp = ctx.repayments
            hits = det.detect_repay_with_loan(
                index, disb, ctx.lookup.many(rp["account_id"].to_list()).astype(np.int64),
                rp["ts"].to_numpy().astype(np.int64), rp["amount"].to_numpy().astype(np.int64),
                rp["loan_row"].to_numpy().astype(np.int64), params,
            )
        elif kind == "prohibited_destination":
            hits = det.detect_prohibited_destination(index, disb, ctx.account_category, ctx.category_names, params)
        elif kind == "rapid_pass_through":
            hits = det.detect_rapid_pass_through(index, disb, params)
        elif kind == "large_outflow":
            hits = det.detect_large_outflow(index, disb, params)
        elif kind == "transfer_cycle":
            hits = det.detect_transfer_cycle(index, disb, params)
        else:  # pragma: no cover - rule packs only load known kinds
            raise ValueError(f"no detector for kind {kind!r}")
    window = int(round(float(rule.params.get("window_days", 0)) * DAY_MS)) or int(
        round(float(rule.params.get("within_hours", 24)) * HOUR_MS)
    )
    max_hops = int(rule.params.get("max_hops", rule.params.get("reach_hops", 0)) or 0)
    out = []
    for i in np.flatnonzero(hits.fired).tolist():
        row = sel.row(i, named=True)
        metric = float(hits.metric[i])
        if kind == "split_disbursement":
            metric = min(1.0, metric / (2 * rule.params["min_loans"]))  # 2× the minimum = full marks
        feats = generic_features(metric, int(hits.first_ts[i]), int(t0[i]), window, int(hits.hops[i]), max_hops)
        s = score(rule, feats)
        paths = _paths(ctx, hits.evidence[i])
        out.append(
            {
                "disb": row, "rule": rule, "score": s,
                "returned_amount": None, "return_ratio": None,
                "first_return_ts": int(hits.first_ts[i]) if hits.first_ts[i] >= 0 else None,
                "path_count": len(paths), "min_hops": int(hits.hops[i]) if hits.hops[i] >= 0 else None,
                "truncated": bool(hits.detail[i].get("truncated", False)),
                "paths": paths,
                "reasons": [_reason(ctx, kind, hits, i, int(amount[i]), int(t0[i]), rule, sel)],
            }
        )
    return out
