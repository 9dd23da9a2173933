"""From a detector's :class:`~flowgraph.engine.hits.Hits` to alert findings.

A rule kind's batch runner (``alerts`` in its module under :mod:`flowgraph.rules.kinds`)
builds the detector's inputs from the batch :class:`~flowgraph.rules.context.Context`,
runs the detector, and hands the hits to :func:`findings`: one finding per fired
disbursement with a score (:mod:`flowgraph.rules.scoring`), example paths read back from
the transactions, and the kind's sentence. The batch (:mod:`flowgraph.rules.batch`) turns
findings into alert rows. This module imports no numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.engine.hits import Disbursements, Hits
from flowgraph.rules.model import Rule
from flowgraph.rules.scoring import duration_text, generic_features, score

if TYPE_CHECKING:
    from flowgraph.rules.context import Context

Reason = Callable[..., str]  # (ctx, rule, sel, hits, i, disbursed, t0) -> sentence


def disbursements(ctx: Context, sel: pl.DataFrame, depth: int = 1, relation_types=None
                  ) -> tuple[Disbursements, list[dict]]:  # fmt: skip
    """The selected disbursements as detector input, with the borrower-linked accounts
    ``T`` (``depth`` relation steps, each relation counted while valid at the
    disbursement's time) and, per disbursement, linked account → chain."""
    borrowers = sel["borrower_id"].fill_null("").to_list()
    indptr, ids, linked_of = ctx.borrower_targets(borrowers, depth, relation_types, sel["ts"].to_numpy())
    payee = sel["payee_account"].to_list() if "payee_account" in sel.columns else [None] * sel.height
    disb = Disbursements(
        ctx.lookup.many(sel["account_id"].to_list()).astype(np.int64),
        sel["ts"].to_numpy().astype(np.int64),
        sel["amount"].to_numpy().astype(np.int64),
        indptr,
        ids,
        ctx.lookup.many([p or "" for p in payee]).astype(np.int64),
    )
    return disb, linked_of


def disbursement_args(ctx: Context, index, rule: Rule, sel: pl.DataFrame, suppress: bool = True) -> tuple:
    """``(index, disbursements, benign)``: the inputs of a detector that needs nothing else
    from the store (the borrower side one relation step away, the declared payees, and the
    accounts the pack's suppression list names for this rule — none when not ``suppress``)."""
    disb, _ = disbursements(ctx, sel)
    return index, disb, ctx.benign(rule) if suppress else None


def example_paths(ctx: Context, evidence: list[np.ndarray]) -> list[dict]:
    """Evidence paths (transaction rows) as ``{"hops": [hop record, …]}``."""
    if not evidence:
        return []
    hops = ctx.hop_rows(np.concatenate(evidence))
    return [{"hops": [hops[int(r)] for r in path]} for path in evidence]


def account_name(ctx: Context, dense: int) -> str:
    """External id of a dense account id (``"?"`` when out of range)."""
    return str(ctx.lookup.ids[dense]) if 0 <= dense < len(ctx.lookup.ids) else "?"


def hops_text(h: int) -> str:
    """``'1 hop'``, ``'3 hops'``."""
    return f"{h} hop{'s' if h != 1 else ''}"


def when_text(hits: Hits, i: int, t0: int) -> str:
    """``'within 2 days'`` after ``t0`` of the hit's first event ('' when none)."""
    return duration_text(max(0, int(hits.first_ts[i]) - t0)) if hits.first_ts[i] >= 0 else ""


def speed_window_ms(params: dict) -> int:
    """The window the ``speed`` feature measures against: ``window_days`` when set and
    non-zero, else ``within_hours`` (24 when the kind has neither)."""
    days = int(round(float(params.get("window_days", 0)) * DAY_MS))
    return days or int(round(float(params.get("within_hours", 24)) * HOUR_MS))


def directness_hops(params: dict) -> int:
    """The hop budget the ``directness`` feature measures against (0 = not a path rule)."""
    return int(params.get("max_hops", params.get("reach_hops", 0)) or 0)


def findings(ctx: Context, rule: Rule, sel: pl.DataFrame, hits: Hits, reason: Reason,
             metric: Callable[[float], float] | None = None) -> list[dict]:  # fmt: skip
    """One finding per fired disbursement of ``sel``: score from the generic features
    (``metric`` maps the detector's metric to 0..1 when it is not a share), example
    paths, and ``reason(ctx, rule, sel, hits, i, disbursed, t0)``."""
    t0 = sel["ts"].to_numpy().astype(np.int64)
    amount = sel["amount"].to_numpy().astype(np.int64)
    window = speed_window_ms(rule.params)
    max_hops = directness_hops(rule.params)
    out = []
    for i in np.flatnonzero(hits.fired).tolist():
        m = float(hits.metric[i])
        feats = generic_features(metric(m) if metric else m, int(hits.first_ts[i]), int(t0[i]), window,
                                 int(hits.hops[i]), max_hops)  # fmt: skip
        paths = example_paths(ctx, hits.evidence[i])
        out.append(
            {
                "disb": sel.row(i, named=True), "rule": rule, "score": score(rule, feats),
                "returned_amount": None, "return_ratio": None,
                "first_return_ts": int(hits.first_ts[i]) if hits.first_ts[i] >= 0 else None,
                "path_count": len(paths), "min_hops": int(hits.hops[i]) if hits.hops[i] >= 0 else None,
                "truncated": bool(hits.detail[i].get("truncated", False)),
                "paths": paths,
                "reasons": [reason(ctx, rule, sel, hits, i, int(amount[i]), int(t0[i]))],
            }
        )
    return out


def runner(detect: Callable[..., Hits], detector_args: Callable[..., tuple], params: type, reason: Reason,
           metric: Callable[[Rule, float], float] | None = None, suppressible: bool = True
           ) -> Callable[..., list[dict]]:  # fmt: skip
    """A kind's batch runner ``alerts(ctx, index, rule, sel)``: ``detect(*detector_args(…),
    params(**rule.params))``, then :func:`findings` with ``reason`` (and ``metric(rule, m)``).

    ``suppressible``: ``detector_args`` takes ``suppress=``; when the pack's suppression list
    names accounts for the rule, the disbursements that did not fire are run again without
    it, and those that fire then are counted as suppressed (:meth:`Context.count_suppressed`):
    a suppressed hit is never silently lost.
    """

    def alerts(ctx: Context, index, rule: Rule, sel: pl.DataFrame) -> list[dict]:
        p = params(**rule.params)
        hits = detect(*detector_args(ctx, index, rule, sel), p)
        if suppressible and ctx.benign(rule) is not None:
            quiet = sel.filter(pl.Series(~hits.fired))
            plain = detect(*detector_args(ctx, index, rule, quiet, suppress=False), p) if quiet.height else None
            ctx.count_suppressed(rule, 0 if plain is None else int(plain.fired.sum()))
        return findings(ctx, rule, sel, hits, reason, (lambda m: metric(rule, m)) if metric else None)

    return alerts
