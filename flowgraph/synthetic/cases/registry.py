"""The one list of case types: name (the label's ``typology``), expected rule, and the function.

To add a case type: write ``def my_case(kit: CaseKit) -> Case`` in the module of its family
(or a new module under ``flowgraph/synthetic/cases/``), and add one :class:`CaseType` line
to :data:`CASE_TYPES`. Case types draw from one random stream in the order of this list,
round by round, so a new type changes the generated data of every seed.

>>> [t.name for t in CASE_TYPES][:3]
['fb_direct', 'fb_split_merge', 'fb_entrusted']
>>> CASE_TYPE["neg_late_return"].expected_rule is None
True
>>> import numpy as np
>>> from flowgraph.synthetic.background import background_world
>>> from flowgraph.synthetic.world import World
>>> w = World()
>>> inst = background_world(w, np.random.Generator(np.random.PCG64(0)), 200)
>>> cases = inject_cases(w, np.random.Generator(np.random.PCG64(1)), inst, rounds=2)
>>> len(cases) == 2 * len(CASE_TYPES), cases[0].case_id, cases[len(CASE_TYPES)].case_id
(True, 'fb_direct-001', 'fb_direct-002')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flowgraph.synthetic.cases import flow_back, lookalikes, negatives, other_rules
from flowgraph.synthetic.cases.kit import Case, CaseKit
from flowgraph.synthetic.world import World


@dataclass(frozen=True)
class CaseType:
    """A labelled case type: ``make(kit)`` injects one case and returns it."""

    name: str  # the label's typology (``labels.parquet`` column ``typology``)
    expected_rule: str | None  # the rule kind that must fire; None for a negative control
    make: Callable[[CaseKit], Case]
    lookalike_of: str | None = None  # a negative control: the rule kind it imitates (must stay silent)


CASE_TYPES: tuple[CaseType, ...] = (
    CaseType("fb_direct", "flow_back", flow_back.fb_direct),
    CaseType("fb_split_merge", "flow_back", flow_back.fb_split_merge),
    CaseType("fb_entrusted", "flow_back", flow_back.fb_entrusted),
    CaseType("fb_related", "flow_back", flow_back.fb_related),
    CaseType("fb_partial", "flow_back", flow_back.fb_partial),
    CaseType("repay_with_loan", "repay_with_loan", other_rules.repay_with_loan),
    CaseType("prohibited_destination", "prohibited_destination", other_rules.prohibited_destination),
    CaseType("rapid_pass_through", "rapid_pass_through", other_rules.rapid_pass_through),
    CaseType("transfer_cycle", "transfer_cycle", other_rules.transfer_cycle),
    CaseType("large_outflow", "large_outflow", other_rules.large_outflow),
    CaseType("split_disbursement", "split_disbursement", other_rules.split_disbursement),
    CaseType("neg_late_return", None, negatives.neg_late_return, "flow_back"),
    CaseType("neg_unlinked_lookalike", None, negatives.neg_unlinked_lookalike, "flow_back"),
    CaseType("neg_own_accounts", None, negatives.neg_own_accounts, "flow_back"),
    CaseType("neg_round_amount", None, negatives.neg_round_amount, "flow_back"),
    CaseType("neg_entrusted_payee", None, lookalikes.neg_entrusted_payee, "large_outflow"),
    CaseType("neg_known_supplier", None, lookalikes.neg_known_supplier, "large_outflow"),
    CaseType("neg_supplier_payroll", None, lookalikes.neg_supplier_payroll, "rapid_pass_through"),
    CaseType("neg_routine_instalment", None, lookalikes.neg_routine_instalment, "repay_with_loan"),
    CaseType("neg_home_purchase", None, lookalikes.neg_home_purchase, "prohibited_destination"),
    CaseType("neg_split_unrelated", None, lookalikes.neg_split_unrelated, "split_disbursement"),
    CaseType("neg_cycle_wrong_order", None, lookalikes.neg_cycle_wrong_order, "transfer_cycle"),
)
CASE_TYPE: dict[str, CaseType] = {t.name: t for t in CASE_TYPES}
assert len(CASE_TYPE) == len(CASE_TYPES), "case type names must be unique"

TYPOLOGIES: tuple[str, ...] = tuple(t.name for t in CASE_TYPES)
EXPECTED_RULE: dict[str, str | None] = {t.name: t.expected_rule for t in CASE_TYPES}
LOOKALIKE_OF: dict[str, str | None] = {t.name: t.lookalike_of for t in CASE_TYPES}


def inject_cases(
    world: World, rng: np.random.Generator, inst_accounts: list[int], rounds: int
) -> list[Case]:
    """``rounds`` cases of every type (round by round, in :data:`CASE_TYPES` order).

    Case ids are ``<typology>-<n>`` with ``n`` counting from ``001`` per typology.
    """
    kit = CaseKit(world, rng, inst_accounts)
    cases: list[Case] = []
    for n in range(1, rounds + 1):
        for t in CASE_TYPES:
            c = t.make(kit)
            c.typology, c.case_id = t.name, f"{t.name}-{n:03d}"
            cases.append(c)
    return cases
