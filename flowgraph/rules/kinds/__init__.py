"""Rule kinds, one module each, and :data:`KINDS`, the one registry that names them.

A rule pack's ``kind = "..."`` picks a module here. Every kind module has

``NAME``
    the kind's name in rule packs;
``Params``
    the frozen dataclass of its ``[params]`` (field metadata: ``doc``, ``min``, ``max``,
    ``choices``, ``type = "money"``), which the pack loader validates against;
``FEATURES``
    the score features its ``[score]`` table may weigh;
``alerts(ctx, index, rule, sel)``
    its batch runner: alert findings for the selected disbursements (``None`` for a kind
    the nightly batch does not score);
``detector_args(ctx, index, rule, sel)``, ``detect(*args, params)``, ``reference(*args, params)``
    the detector's inputs read from the store, the detector, and its slow reference
    implementation, which take the same arguments and return
    :class:`~flowgraph.engine.hits.Hits` (``None`` where the kind has no detector);

and a docstring with the pattern it catches and its closest legitimate look-alike. A kind
may also set ``SELECTION``, a polars condition on the batch context's disbursements that
its rules look at beyond the day, the window and the payment mode (split_disbursement:
only disbursements of loans the store holds).
Kind modules import no numba at import time (their kernels under :mod:`flowgraph.engine`
are imported when a detector runs), so loading a pack stays fast.

Adding a kind: one module here, one line in :data:`KINDS`, one case file
``tests/rules/cases/<kind>.toml``.

>>> sorted(KINDS)[:3]
['classification', 'flow_back', 'large_outflow']
>>> KINDS["flow_back"].FEATURES
('base', 'return_ratio', 'speed', 'own_account', 'directness')
"""

from __future__ import annotations

from types import ModuleType

from flowgraph.rules.kinds import (
    classification,
    flow_back,
    large_outflow,
    prohibited_destination,
    rapid_pass_through,
    repay_with_loan,
    split_disbursement,
    transfer_cycle,
)

KINDS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        flow_back,
        repay_with_loan,
        prohibited_destination,
        rapid_pass_through,
        large_outflow,
        split_disbursement,
        transfer_cycle,
        classification,
    )
}
