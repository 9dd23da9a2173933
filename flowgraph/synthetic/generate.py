"""Labelled synthetic bank data for flowgraph (``flowgraph generate``): the public entry.

``generate(out_dir, scale, seed)`` writes one CSV per contract table
(``transactions.csv``, ``accounts.csv``, ``parties.csv``, ``relations.csv``, ``loans.csv``,
``disbursements.csv``, ``repayments.csv``, ``classifications.csv``; columns exactly
``TABLES[t].column_names``, amounts as decimal strings with two places, timestamps as
ISO-8601 UTC with milliseconds and ``Z``) plus ``labels.parquet`` describing every injected
case. Output is byte-identical for the same ``(scale, seed)``: all randomness comes from
``numpy.random.Generator(PCG64)`` streams derived from the seed, nothing depends on wall
clock time or hash-randomised iteration order. The steps, each in its own module of
:mod:`flowgraph.synthetic`, use one stream each:

1. :mod:`~flowgraph.synthetic.background` — background parties, accounts, relations;
2. :mod:`~flowgraph.synthetic.cases` — the labelled cases, each on its own loan;
3. :mod:`~flowgraph.synthetic.background` — ordinary loans of background parties, then
   :mod:`~flowgraph.synthetic.loans` settles every loan's repayments and grades it;
4. :mod:`~flowgraph.synthetic.writer` — ids and the entity tables;
5. :mod:`~flowgraph.synthetic.traffic` + :mod:`~flowgraph.synthetic.writer` — background
   transactions merged with the cases' transactions, in time order;
6. :mod:`~flowgraph.synthetic.labels` — ``labels.parquet``.

The data covers 2024-01-01 .. 2024-12-31 UTC (see :mod:`flowgraph.synthetic.constants`).

>>> sorted(SCALES), SCALES["tiny"].transactions
(['large', 'medium', 'small', 'tiny'], 20000)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowgraph.core.errors import UsageError
from flowgraph.core.schema import TABLES
from flowgraph.synthetic.background import background_world, ordinary_loans
from flowgraph.synthetic.cases.kit import Case
from flowgraph.synthetic.cases.registry import EXPECTED_RULE, TYPOLOGIES, inject_cases
from flowgraph.synthetic.constants import BACKGROUND_MAX, MIN_DISBURSEMENT
from flowgraph.synthetic.labels import labels_frame
from flowgraph.synthetic.loans import settle_and_grade
from flowgraph.synthetic.traffic import Traffic
from flowgraph.synthetic.world import World
from flowgraph.synthetic.writer import Ids, write_entities, write_transactions

__all__ = [
    "BACKGROUND_MAX",
    "EXPECTED_RULE",
    "MIN_DISBURSEMENT",
    "SCALES",
    "TYPOLOGIES",
    "Scale",
    "generate",
]


@dataclass(frozen=True)
class Scale:
    """Size of a generated bank: about ``accounts`` accounts, exactly ``transactions`` rows."""

    accounts: int
    transactions: int
    cases_per_typology: int
    chunk_rows: int = 1_000_000


SCALES: dict[str, Scale] = {
    "tiny": Scale(1_000, 20_000, 4),
    "small": Scale(20_000, 500_000, 12),
    "medium": Scale(200_000, 10_000_000, 40),
    "large": Scale(1_000_000, 50_000_000, 100),
}


def generate(
    out_dir: Path,
    scale: str = "tiny",
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Write a labelled synthetic bank into ``out_dir``; return row counts.

    ``progress(step, done, total)`` is called as work proceeds (``step`` is e.g.
    ``"entities"``, ``"transactions"``, ``"labels"``; ``done``/``total`` count units of that
    step). Returns ``{"scale", "seed", "tables": {table: rows}, "typologies": {typology:
    cases}, "labels": cases}``.
    """
    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; scales: {', '.join(SCALES)}")
    sc = SCALES[scale]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def report(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress(step, done, total)

    ss = np.random.SeedSequence(seed)
    r_world, r_cases, r_loans, r_tx, r_ids = (
        np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(5)
    )

    report("entities", 0, 4)
    n_cases = sc.cases_per_typology * len(TYPOLOGIES)
    w = World()
    inst = background_world(w, r_world, max(200, sc.accounts - 6 * n_cases))
    n_bg_parties = len(w.p_kind)
    report("entities", 1, 4)
    cases = inject_cases(w, r_cases, inst, sc.cases_per_typology)
    report("entities", 2, 4)
    bg = np.arange(n_bg_parties)
    bg = bg[~np.isin(bg, [w.a_owner[i] for i in inst])]
    spending = ordinary_loans(w, r_loans, max(10, n_bg_parties // 25), bg)
    settle_and_grade(w)
    report("entities", 3, 4)

    ids = Ids.assign(w, r_ids)
    counts = write_entities(out_dir, w, ids)
    report("entities", 4, 4)

    # the ordinary loans' spending rides along as one unlabelled group of transactions
    ordinary = Case(loan=-1, txs=spending, hops=None, note="", linked=set(), d=-1, a=0, t0=0)
    counts["transactions"], case_tx_ids = write_transactions(
        out_dir, [*cases, ordinary], Traffic(w, r_tx), ids, sc.transactions, sc.chunk_rows, report
    )

    labels = labels_frame(w, cases, ids, case_tx_ids)
    labels.write_parquet(out_dir / "labels.parquet", statistics=False)
    report("labels", 1, 1)
    typ_counts = {t: int(sum(1 for c in cases if c.typology == t)) for t in TYPOLOGIES}
    return {
        "scale": scale,
        "seed": seed,
        "tables": {t: counts[t] for t in TABLES},
        "typologies": typ_counts,
        "labels": labels.height,
    }
