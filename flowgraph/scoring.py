"""Scores, levels and human-readable reasons for rule firings.

A score is ``base + Σ weight_f × feature_f`` over the rule kind's features (each in
0..1), clipped to 0..100 and rounded to one decimal; the level comes from the rule's
thresholds. A firing always gets a level (a small, slow, far return is ``low``, never
silence).

Flow-back features
    return_ratio  returned / disbursed
    speed         1 − days to the first return / window days
    own_account   1 when a path ends at an account of a borrower, 0 when only at a
                  related party's account
    directness    1 − (fewest hops − 1) / max_hops
Other kinds
    metric        the detector's main measure (0..1, see flowgraph.detectors)
    speed         1 − time to the event / the rule's window
    directness    1 − (hops − 1) / max_hops when the rule walks paths, else 0

>>> from flowgraph.rulepack import Rule
>>> r = Rule("fb", "fb", "flow_back", "1", "", True, ("self",), {}, {"base": 20, "return_ratio": 50}, {"high": 70, "medium": 40}, "")
>>> s = score(r, {"base": 1, "return_ratio": 0.62})
>>> s, r.level_of(s)
(51.0, 'medium')
"""

from __future__ import annotations

import math

from .rulepack import Rule
from .values import DAY_MS, HOUR_MS, format_amount_grouped

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


def score(rule: Rule, features: dict[str, float]) -> float:
    total = sum(rule.score.get(name, 0.0) * float(value) for name, value in features.items())
    return round(min(100.0, max(0.0, total)), 1)


def clip01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


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


def generic_features(metric: float, event_ms: int, t0: int, window_ms: int, hops: int, max_hops: int) -> dict[str, float]:
    speed = 1 - (event_ms - t0) / window_ms if window_ms > 0 and event_ms >= 0 else 0.0
    return {
        "base": 1.0,
        "metric": clip01(metric),
        "speed": clip01(speed),
        "directness": clip01(1 - (hops - 1) / max_hops) if hops > 0 and max_hops else 0.0,
    }


def duration_text(ms: int) -> str:
    """``'within 2 days'``, ``'within 5 hours'`` (rounded up)."""
    if ms < DAY_MS:
        hours = max(1, math.ceil(ms / HOUR_MS))
        return f"within {hours} hour{'s' if hours != 1 else ''}"
    days = math.ceil(ms / DAY_MS)
    return f"within {days} day{'s' if days != 1 else ''}"


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
