"""TODO docstring."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flowgraph.core.schema import RELATION_TYPES
from flowgraph.core.values import DAY_MS, format_amount_grouped
from flowgraph.engine.flow_back import FlowBackParams, find_flow_back_batch
from flowgraph.rules.context import Context, borrower_targets
from flowgraph.rules.model import Rule
from flowgraph.rules.scoring import clip01, duration_text, score


@dataclass(frozen=True)
class FlowBackRuleParams:
    """The flow-back parameters as a rule pack writes them (``[params]`` of a flow_back rule)."""

    window_days: float = field(default=30.0, metadata={"min": 0, "max": 3660, "doc": "days after disbursement a return may take"})
    max_hops: int = field(default=5, metadata={"min": 1, "max": 12, "doc": "transfers on a path"})
    min_amount: int = field(default=0, metadata={"type": "money", "min": 0, "doc": "every hop at least this (decimal string)"})
    min_amount_ratio: float = field(default=0.1, metadata={"min": 0, "max": 1, "doc": "every hop at least this share of the disbursed amount"})
    link_depth: int = field(default=1, metadata={"min": 0, "max": 6, "doc": "relation steps from the borrowers"})
    relation_types: tuple[str, ...] = field(default=RELATION_TYPES, metadata={"choices": RELATION_TYPES, "doc": "relations that link parties"})
    max_paths: int = field(default=100, metadata={"min": 1, "max": 100000, "doc": "paths listed per disbursement"})
    tracing: str = field(default="greedy", metadata={"choices": ("greedy", "maxflow"), "doc": "returned-amount rule"})



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
        p = FlowBackRuleParams(**params)
        return cls().override(
            window_days=p.window_days, max_hops=p.max_hops, min_amount=p.min_amount,
            min_amount_ratio=p.min_amount_ratio, max_paths=p.max_paths, tracing=p.tracing,
            link_depth=p.link_depth, relation_types=tuple(p.relation_types),
        )

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


def flow_back_alerts(ctx: Context, index, rule: Rule, sel: pl.DataFrame, threads) -> list[dict]:
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
