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
    metric        the detector's main measure (0..1, see the kind's module in flowgraph.rules.kinds)
    speed         1 − time to the event / the rule's window
    directness    1 − (hops − 1) / max_hops when the rule walks paths, else 0

>>> from flowgraph.rules.model import Rule
>>> r = Rule("fb", "fb", "flow_back", "1", "", True, ("self",), {}, {"base": 20, "return_ratio": 50}, {"high": 70, "medium": 40}, "")
>>> s = score(r, {"base": 1, "return_ratio": 0.62})
>>> s, r.level_of(s)
(51.0, 'medium')
"""

from __future__ import annotations

import math

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.rules.model import Rule

GENERIC_FEATURES = ("base", "metric", "speed", "directness")  # of generic_features: kinds other than flow_back


def score(rule: Rule, features: dict[str, float]) -> float:
    total = sum(rule.score.get(name, 0.0) * float(value) for name, value in features.items())
    return round(min(100.0, max(0.0, total)), 1)


def clip01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


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
