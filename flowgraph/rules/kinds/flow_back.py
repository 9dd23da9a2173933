"""Flow-back (贷款资金回流): the proceeds leave the borrower side and come back to it.

Pattern it catches (entrusted payment to a supplier; P1 is the borrower, P2 its spouse)::

    L1 disburses 1 000 000.00 into A_supplier (day 0)
    A_supplier ─900 000.00 (day 2)→ A_m ─850 000.00 (day 3)→ A_p2 (owned by P2)
                                         → fires: 85 % came back to the spouse's account

Closest legitimate look-alike: money moved only among the borrower's own accounts (it
never left the borrower side, condition 7), a return after the 30-day window, or a
return in amounts below the per-hop floor (10 % of the disbursement).

The exact rule (conditions 1–8) is in :mod:`flowgraph.engine.flow_back`, which holds the
search; the returned amount is traced greedily (or as a maximum flow) over every path's
edges; the slow reference is :mod:`flowgraph.engine.flow_back_reference`. The borrower
side ``T`` is every account of the borrower and of parties ``link_depth`` relation steps
away. ``TraceOptions`` are these parameters as ``flowgraph trace`` and evidence bundles use
them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowgraph.core.schema import RELATION_TYPES
from flowgraph.core.values import DAY_MS, format_amount_grouped
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back_batch
from flowgraph.engine.flow_back_reference import find_flow_back_reference
from flowgraph.engine.hits import Disbursements, Hits
from flowgraph.rules.findings import disbursements, example_paths
from flowgraph.rules.model import Rule, param
from flowgraph.rules.scoring import clip01, duration_text, score

NAME = "flow_back"
FEATURES = ("base", "return_ratio", "speed", "own_account", "directness")


@dataclass(frozen=True)
class FlowBackRuleParams:
    """The flow-back parameters as a rule pack writes them (``[params]`` of a flow_back rule)."""

    window_days: float = param(30.0, 0, 3660, "days after disbursement a return may take")
    max_hops: int = param(5, 1, 12, "transfers on a path")
    min_amount: int = param(0, 0, None, "every hop at least this (decimal string)", type="money")
    min_amount_ratio: float = param(0.1, 0, 1, "every hop at least this share of the disbursed amount")
    link_depth: int = param(1, 0, 6, "relation steps from the borrowers")
    relation_types: tuple[str, ...] = param(RELATION_TYPES, doc="relations that link parties", choices=RELATION_TYPES)
    max_paths: int = param(100, 1, 100000, "paths listed per disbursement")
    tracing: str = param("greedy", doc="returned-amount rule", choices=("greedy", "maxflow"))

    def trace_options(self) -> TraceOptions:
        """These parameters as :class:`TraceOptions` (the engine's, plus the borrower side)."""
        return TraceOptions().override(
            window_days=self.window_days, max_hops=self.max_hops, min_amount=self.min_amount,
            min_amount_ratio=self.min_amount_ratio, max_paths=self.max_paths, tracing=self.tracing,
            link_depth=self.link_depth, relation_types=tuple(self.relation_types),
        )


Params = FlowBackRuleParams


@dataclass(frozen=True)
class TraceOptions:
    """Flow-back parameters plus who counts as the borrower side."""

    params: FlowBackParams = FlowBackParams()
    link_depth: int = 1
    relation_types: tuple[str, ...] = RELATION_TYPES

    @classmethod
    def defaults(cls) -> TraceOptions:
        """DESIGN.md defaults: 30 days, 5 hops, ratio 0.1, depth 1, every relation type."""
        return cls()

    def override(self, **kw) -> TraceOptions:
        """Replace the parameters given (None = keep)."""
        kw = {k: v for k, v in kw.items() if v is not None}
        p = {}
        if "window_days" in kw:
            p["window_ms"] = int(round(kw.pop("window_days") * DAY_MS))
        for name in ("max_hops", "min_amount", "min_amount_ratio", "max_paths", "tracing"):
            if name in kw:
                p[name] = kw.pop(name)
        params = dataclasses.replace(self.params, **p)
        return dataclasses.replace(self, params=params, **kw)

    @classmethod
    def from_rule_params(cls, params: dict) -> TraceOptions:
        """Options from a flow_back rule's validated ``params``."""
        return FlowBackRuleParams(**params).trace_options()

    def as_dict(self) -> dict:
        p = dataclasses.asdict(self.params)
        return {**p, "link_depth": self.link_depth, "relation_types": list(self.relation_types)}


def options_from_pack(pack) -> dict[str, TraceOptions]:
    """Payment mode → the options of the pack's flow_back rule for that mode.

    A mode no enabled flow_back rule covers gets DESIGN.md's defaults.
    """
    out = {}
    for mode in ("self", "entrusted"):
        rule = next((r for r in pack.of_kind("flow_back") if mode in r.payment_modes), None)
        out[mode] = TraceOptions.from_rule_params(rule.params) if rule else TraceOptions.defaults()
    return out


def detect_flow_back(index, disb: Disbursements, params: FlowBackRuleParams = FlowBackRuleParams()) -> Hits:
    """Flow-back paths of each disbursement into its borrower side ``T`` (``disb``'s targets).

    Returns
    -------
    Hits
        Fired when there is a path; ``amount`` = the returned amount, ``metric`` = amount /
        a, ``first_ts`` = the earliest return, ``hops`` = fewest hops among the kept paths;
        ``evidence`` = the kept paths (at most ``max_paths``, by last ts, hops, rows);
        ``detail``: ``path_count`` (all paths found), ``truncated``.

    Examples
    --------
    >>> from flowgraph.engine.csr import build_index
    >>> idx = build_index(np.array([0, 1], np.int32), np.array([1, 2], np.int32),
    ...                   np.array([10, 20]), np.array([500, 400]), np.array(["d", "x", "t"]))
    >>> h = detect_flow_back(idx, Disbursements.of([0], [0], [1000], [[2]]))
    >>> h.amount.tolist(), h.hops.tolist(), [p.tolist() for p in h.evidence[0]], h.detail[0]
    ([400], [2], [[0, 1]], {'path_count': 1, 'truncated': False})
    """
    p = params.trace_options().params
    amt = np.asarray(disb.amount, np.int64)
    b = find_flow_back_batch(index, disb.account, disb.t0, amt, disb.target_indptr, disb.target_ids, p)
    hits = Hits.empty(len(b))
    for i in np.flatnonzero(b.path_count > 0).tolist():
        r = b.result(i)
        hits.fired[i] = True
        hits.amount[i] = r.returned_amount
        hits.first_ts[i] = r.first_return_ts
        hits.hops[i] = r.min_hops if r.min_hops is not None else -1
        hits.evidence[i] = r.paths
        hits.detail[i] = {"path_count": r.path_count, "truncated": r.truncated}
    hits.set_share_metric(amt)
    return hits


def reference_flow_back(index, disb: Disbursements, params: FlowBackRuleParams = FlowBackRuleParams()) -> Hits:
    """Slow reference of :func:`detect_flow_back`: every chain checked against the eight
    conditions (:func:`~flowgraph.engine.flow_back_reference.find_flow_back_reference`)
    over the index's transactions in row order; ``maxflow`` tracing over the paths' edges."""
    p = params.trace_options().params
    order = np.argsort(np.asarray(index.row), kind="stable")
    src, dst, ts, amount = (np.asarray(x)[order].tolist() for x in (index.edge_src(), index.dst, index.ts, index.amount))
    tip, tid = np.asarray(disb.target_indptr), np.asarray(disb.target_ids)
    rows = []
    for i, (d, t0, a) in enumerate(zip(*(np.asarray(x).tolist() for x in (disb.account, disb.t0, disb.amount)), strict=True)):
        targets = tid[tip[i] : tip[i + 1]].tolist()
        ref = find_flow_back_reference(src, dst, ts, amount, d, t0, a, targets, window_ms=p.window_ms, max_hops=p.max_hops,
                                       min_amount=p.min_amount, min_amount_ratio=p.min_amount_ratio, max_paths=p.max_paths)  # fmt: skip
        if not ref.path_count:
            rows.append(None)
            continue
        returned = ref.returned_amount
        if p.tracing == "maxflow":
            from flowgraph.engine.flow_back_tracing import trace_returned_amount  # numba module

            union = ref.edges  # all paths' edges: the amount must not depend on the listing cap
            returned = trace_returned_amount(*(np.array([c[e] for e in union], np.int64) for c in (src, dst, ts, amount)),
                                             np.array(union), d, t0, a, np.array(targets), method="maxflow")  # fmt: skip
        rows.append((returned, ref.first_return_ts, min(len(x) for x in ref.paths) if ref.paths else -1))
    return Hits.of_rows(rows)


# ------------------------------------------------------------------ in the nightly batch
def detector_args(ctx, index, rule: Rule, sel: pl.DataFrame) -> tuple:
    """The detector's inputs from the store: the disbursements with the rule's borrower side."""
    opts = TraceOptions.from_rule_params(rule.params)
    disb, _ = disbursements(ctx, sel, opts.link_depth, opts.relation_types)
    return index, disb


def alerts(ctx, index, rule: Rule, sel: pl.DataFrame) -> list[dict]:
    """Alert findings of a flow_back rule on the selected disbursements."""
    params = FlowBackRuleParams(**rule.params)
    opts = params.trace_options()
    p = opts.params
    disb, linked_of = disbursements(ctx, sel, opts.link_depth, opts.relation_types)
    hits = detect_flow_back(index, disb, params)
    out = []
    for i in np.flatnonzero(hits.fired).tolist():
        row = sel.row(i, named=True)
        paths = example_paths(ctx, hits.evidence[i])
        returned, amount, t0 = int(hits.amount[i]), int(disb.amount[i]), int(disb.t0[i])
        first, min_hops, truncated = int(hits.first_ts[i]), int(hits.hops[i]), hits.detail[i]["truncated"]
        borrower_owned = set(ctx.graph.owned.get(row["borrower_id"] or "", ()))
        own = any(x["hops"][-1]["dst"] in borrower_owned for x in paths)
        first_end = paths[0]["hops"][-1]["dst"]  # the reason names the account of the earliest return
        feats = flow_back_features(returned / amount if amount else 0.0, first, t0, p.window_ms, own, min_hops, p.max_hops)
        out.append(
            {
                "disb": row, "rule": rule, "score": score(rule, feats), "returned_amount": returned,
                "return_ratio": round(returned / amount, 6) if amount else 0.0,
                "first_return_ts": first, "path_count": hits.detail[i]["path_count"], "min_hops": min_hops,
                "truncated": truncated, "paths": paths,
                "reasons": [flow_back_reason(returned, amount, linked_of[i].get(first_end), min_hops, first - t0, truncated)],
            }
        )
    return out


RELATION_WORDS = {
    "spouse": "spouse",
    "parent": "parent",
    "child": "child",
    "relative": "relative",
    "legal_rep": "legal representative",
    "shareholder": "shareholder",
    "investor": "investor",
    "guarantor": "guarantor",
    "affiliate": "affiliate",
    "shared_phone": "phone-sharing party",
    "shared_address": "address-sharing party",
    "other": "related party",
}


def flow_back_features(
    return_ratio: float, first_return_ms: int, t0: int, window_ms: int, own_account: bool,
    min_hops: int, max_hops: int,
) -> dict[str, float]:
    """The flow-back score features (see :mod:`flowgraph.rules.scoring`), each in 0..1."""
    speed = 1 - (first_return_ms - t0) / window_ms if window_ms > 0 else 1.0
    return {
        "base": 1.0,
        "return_ratio": clip01(return_ratio),
        "speed": clip01(speed),
        "own_account": 1.0 if own_account else 0.0,
        "directness": clip01(1 - (min_hops - 1) / max_hops) if max_hops else 0.0,
    }


def whose_account(chain: list[dict]) -> str:
    """``"the borrower's own account"``, ``"the borrower's spouse's account"``, …"""
    relations = [step["relation"] for step in chain if "relation" in step]
    if not relations:
        return "the borrower's own account"
    words = "'s ".join(RELATION_WORDS.get(r, r) for r in relations)
    return f"the borrower's {words}'s account"


def flow_back_reason(
    returned: int, amount: int, chain: list[dict] | None, min_hops: int, elapsed_ms: int, truncated: bool
) -> str:
    """``'85% of the 1,000,000.00 disbursed came back to the borrower's spouse's account after 2 hops within 3 days'``."""
    ratio = returned / amount if amount else 0.0
    where = whose_account(chain) if chain is not None else "a borrower-linked account"
    hops = f"{min_hops} hop{'s' if min_hops != 1 else ''}"
    text = (
        f"{ratio:.0%} of the {format_amount_grouped(amount)} disbursed came back to {where} "
        f"after {hops} {duration_text(elapsed_ms)}"
    )
    if truncated:
        text += " (path list truncated)"
    return text


detect = detect_flow_back
reference = reference_flow_back
