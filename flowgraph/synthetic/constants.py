"""The numbers every part of the generator shares: the data year, amount limits, rule defaults.

The generated data covers 2024-01-01 .. 2024-12-31 UTC. Every background transaction is
below ``BACKGROUND_MAX`` and every disbursement is at least ``MIN_DISBURSEMENT``, so that
no background transfer can be a hop of a path at the default rule parameters
(``WINDOW_MS``, ``MAX_HOPS``, ``MIN_AMOUNT_RATIO``): four background hops together are
still below the smallest hop amount a path may use.

>>> from flowgraph.core.values import format_ts
>>> format_ts(START_MS), format_ts(END_MS)
('2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')
>>> [format_ts(t)[:10] for t in QUARTER_ENDS]
['2024-03-31', '2024-06-30', '2024-09-30', '2024-12-31']
>>> BACKGROUND_MAX * 4 <= MIN_DISBURSEMENT * MIN_AMOUNT_RATIO
True
"""

from __future__ import annotations

from flowgraph.core.values import DAY_MS

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00.000Z
DAYS = 366  # 2024 is a leap year; data ends before 2025-01-01T00:00:00.000Z
END_MS = START_MS + DAYS * DAY_MS
MINUTE_MS = 60_000

BACKGROUND_MAX = 5_000_000 - 1  # minor units: every background amount is < 50 000.00
MIN_DISBURSEMENT = 200_000_000  # minor units: 2 000 000.00
CASE_MAX_LOAN = 5_000_000_000  # 50 000 000.00

# default rule parameters the labels are built for
WINDOW_MS = 30 * DAY_MS
MAX_HOPS = 5
MIN_AMOUNT_RATIO = 0.1

assert BACKGROUND_MAX * 4 <= MIN_DISBURSEMENT * MIN_AMOUNT_RATIO

# classification dates: Mar 31, Jun 30, Sep 30, Dec 31 (00:00 UTC)
QUARTER_ENDS: tuple[int, ...] = tuple(START_MS + d * DAY_MS for d in (90, 181, 273, 365))
