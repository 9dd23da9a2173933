"""Five-level classification (正常 / 关注 / 次级 / 可疑 / 损失): grade floors from alerts and arrears.

Pattern it catches (the shipped rule)::

    L1 high flow_back alert on a disbursement of the last 365 days   → at least special_mention
    L2 principal 95 days overdue (beyond the 15-day grace period)    → at least substandard

Closest legitimate look-alike: a loan that is a few days late but inside its grace period,
or whose alerts are only medium or low, or a loan someone already graded higher by hand
(suggestions only ever raise a grade; a manual record of the day is never overwritten).

This module holds the rule's parameters, what the pack loader needs. The rule is not
scored by the nightly batch (``alerts = None``): ``flowgraph classify`` reads the alerts
the other kinds wrote and the repayment status, and suggests grade changes. That logic
stays in :mod:`flowgraph.rules.classification` because it is a consumer of every other
kind's alerts and of the classification records, not a detector over the transfer graph:
kind modules read only the batch context, never the alert store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from flowgraph.core.schema import GRADES
from flowgraph.rules.model import ALERTING_KINDS, LEVELS
from flowgraph.rules.repayment import ScheduleParams
from flowgraph.rules.scoring import GENERIC_FEATURES

NAME = "classification"
FEATURES = GENERIC_FEATURES  # unused (not scored); a [score] table of these still loads

@dataclass(frozen=True)
class ClassificationParams(ScheduleParams):
    """Parameters of a ``classification`` rule (validated by the rule-pack loader): the
    repayment schedule's, then the grade floors."""

    alert_kinds: tuple[str, ...] = field(default=("flow_back", "repay_with_loan"), metadata={"choices": ALERTING_KINDS, "doc": "alert kinds that set a floor"})
    alert_levels: tuple[str, ...] = field(default=("high",), metadata={"choices": LEVELS, "doc": "alert levels that set a floor"})
    alert_grade: str = field(default="special_mention", metadata={"choices": GRADES, "doc": "floor set by such an alert"})
    alert_lookback_days: int = field(default=365, metadata={"min": 1, "max": 3660, "doc": "alerts on disbursements this many days before the as-of day count"})
    special_mention_after_days: int = field(default=0, metadata={"min": 0, "max": 3660, "doc": "overdue more than this → at least special_mention"})
    substandard_after_days: int = field(default=90, metadata={"min": 0, "max": 3660, "doc": "overdue more than this → at least substandard"})
    doubtful_after_days: int = field(default=270, metadata={"min": 0, "max": 3660, "doc": "overdue more than this → at least doubtful"})
    loss_after_days: int = field(default=360, metadata={"min": 0, "max": 3660, "doc": "overdue more than this → at least loss"})

    def schedule_params(self) -> ScheduleParams:
        return ScheduleParams(**{f.name: getattr(self, f.name) for f in fields(ScheduleParams)})

    def overdue_floors(self) -> list[tuple[int, str]]:
        """(more-than days, grade), strictest first."""
        return [
            (self.loss_after_days, "loss"),
            (self.doubtful_after_days, "doubtful"),
            (self.substandard_after_days, "substandard"),
            (self.special_mention_after_days, "special_mention"),
        ]


Params = ClassificationParams
alerts = None  # run by `flowgraph classify` (flowgraph.rules.classification.suggest), not by `score`
detector_args = detect = reference = None  # no detector: floors are read from alerts and arrears
