"""Rule kinds: the registry's contract, and hand-written detector cases per kind.

The store-level cases (transactions in, alerts out) are data files under ``cases/``
(:mod:`tests.rules.test_cases`); these check the detectors' own outputs (hops, evidence,
detail) on tiny graphs, parameter by parameter.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.rules.kinds import KINDS
from flowgraph.rules.kinds.large_outflow import LargeOutflowParams, detect_large_outflow
from flowgraph.rules.kinds.prohibited_destination import (
    ProhibitedDestinationParams,
    detect_prohibited_destination,
)
from flowgraph.rules.kinds.rapid_pass_through import (
    RapidPassThroughParams,
    detect_rapid_pass_through,
)
from flowgraph.rules.kinds.repay_with_loan import RepayWithLoanParams, detect_repay_with_loan
from flowgraph.rules.kinds.split_disbursement import (
    SplitDisbursementParams,
    detect_split_disbursement,
)
from flowgraph.rules.kinds.transfer_cycle import TransferCycleParams, detect_transfer_cycle
from flowgraph.rules.pack import kind_specs
from tests.rules.tiny import A, graph, one

CASES = Path(__file__).parent / "cases"


# ----------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("name", sorted(KINDS))
def test_kind_module_contract(name):
    kind = KINDS[name]
    assert kind.NAME == name
    assert dataclasses.is_dataclass(kind.Params) and kind.Params.__dataclass_params__.frozen
    assert kind.FEATURES and kind.FEATURES[0] == "base"
    assert "look-alike" in kind.__doc__ and "Pattern it catches" in kind.__doc__
    if kind.alerts is None:  # classification: run by `classify`, no detector
        assert kind.detect is None and kind.reference is None and kind.detector_args is None
    else:
        assert callable(kind.detect) and callable(kind.reference) and callable(kind.detector_args)
        assert kind.detect is not kind.reference
    assert (CASES / f"{name}.toml").exists(), f"kind {name} has no case file"


def test_every_case_file_names_a_kind():
    assert sorted(p.stem for p in CASES.glob("*.toml")) == sorted(KINDS)


def test_classification_may_name_every_scored_kind():
    """The kinds a classification rule's alerts may come from are the registry's alerting
    kinds (filled in by the loader): a new kind needs no second list."""
    spec = kind_specs()["classification"]["alert_kinds"]
    assert spec.choices == tuple(n for n, k in KINDS.items() if k.alerts is not None)
    assert set(spec.choices) == set(KINDS) - {"classification"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_params_have_docs_and_ranges_for_rule_packs(name):
    for f in dataclasses.fields(KINDS[name].Params):
        assert f.metadata.get("doc"), (name, f.name)
        if isinstance(f.default, int | float) and not isinstance(f.default, bool):
            assert "min" in f.metadata, (name, f.name)


def test_loading_a_pack_compiles_nothing():
    """`flowgraph rules list` loads every kind module: none may import numba."""
    code = "import sys; from flowgraph.rules.pack import load_pack; load_pack(); assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- repay with loan


def _repay(idx, disb, reps, **kw):
    acc, ts, am, loan = (np.array(c, np.int64) for c in zip(*reps, strict=True))
    return detect_repay_with_loan(idx, disb, acc, ts, am, loan, RepayWithLoanParams(**kw))


def test_repay_with_loan_fires_through_chain():
    idx = graph([(0, 1, 10, 800_000), (1, 2, 20, 700_000)])
    h = _repay(idx, one(), [(2, 30, 600_000, 5), (2, 25, 10_000, 6)])
    assert h.fired[0] and h.hops[0] == 2 and h.first_ts[0] == 30 and h.amount[0] == 600_000
    assert h.detail[0]["repaid_loan_row"] == 5 and h.detail[0]["account"] == 2
    assert [p.tolist() for p in h.evidence[0]] == [[0, 1]]
    assert h.metric[0] == pytest.approx(0.6)


def test_repay_with_loan_lookalikes():
    idx = graph([(0, 1, 10, 800_000), (1, 2, 20, 700_000)], n=4)  # account 3 exists, unreached
    assert _repay(idx, one(), [(2, 30, 600_000, 5)]).fired[0]  # the control: it fires
    # repayment before the money arrived, too small, after the window, unreached account
    assert not _repay(idx, one(), [(2, 20, 600_000, 5)]).fired[0]
    assert not _repay(idx, one(), [(2, 30, 40_000, 5)]).fired[0]
    assert not _repay(idx, one(), [(2, 31 * DAY_MS, 600_000, 5)]).fired[0]
    assert not _repay(idx, one(), [(3, 30, 600_000, 5)]).fired[0]
    # wrong order of timestamps in the chain
    idx2 = graph([(0, 1, 20, 800_000), (1, 2, 10, 700_000)])
    assert not _repay(idx2, one(), [(2, 30, 600_000, 5)]).fired[0]
    # the chain hop is too small
    idx3 = graph([(0, 1, 10, 800_000), (1, 2, 20, 50_000)])
    assert not _repay(idx3, one(), [(2, 30, 600_000, 5)]).fired[0]


def test_repay_with_loan_zero_hops_and_max_hops():
    idx = graph([(0, 1, 10, 800_000)])
    h = _repay(idx, one(t0=5), [(0, 6, 100_000, 1), (0, 5, 100_000, 2)])
    assert h.fired[0] and h.hops[0] == 0 and h.first_ts[0] == 6
    assert not _repay(idx, one(t0=5), [(1, 11, 100_000, 1)], max_hops=0).fired[0]


# ----------------------------------------------------------------------------- prohibited


CAT = np.array([-1, -1, 0, 3, -1], np.int8)  # a2 brokerage, a3 crypto


def test_prohibited_destination_fires_and_names_category():
    idx = graph([(0, 1, 10, 800_000), (1, 3, 20, 700_000), (0, 2, 30, 150_000)], n=5)
    h = detect_prohibited_destination(idx, one(), CAT)
    assert h.fired[0] and h.hops[0] == 1 and h.first_ts[0] == 20
    assert h.detail[0] == {"account": 3, "category": "crypto", "accounts": 2}
    assert h.amount[0] == 850_000
    p = ProhibitedDestinationParams(categories=("brokerage",))
    h2 = detect_prohibited_destination(idx, one(), CAT, params=p)
    assert h2.first_ts[0] == 30 and h2.detail[0]["category"] == "brokerage"


def test_prohibited_destination_lookalikes():
    # small card payment at the brokerage; brokerage reached before the money arrived
    idx = graph([(0, 2, 10, 5_000), (0, 1, 20, 800_000), (1, 3, 15, 800_000)], n=5)
    assert not detect_prohibited_destination(idx, one(), CAT).fired[0]
    # disbursement straight into a brokerage account only with the flag
    idx2 = graph([(2, 4, 10, 1)], n=5)
    assert not detect_prohibited_destination(idx2, one(d=2), CAT).fired[0]
    p = ProhibitedDestinationParams(include_disbursement_account=True)
    h = detect_prohibited_destination(idx2, one(d=2), CAT, params=p)
    assert h.fired[0] and h.hops[0] == 0 and h.first_ts[0] == 0


# ----------------------------------------------------------------------------- pass-through


def test_rapid_pass_through_fires():
    t = 10 * HOUR_MS
    idx = graph(
        [(0, 1, t, 800_000), (1, 2, t + HOUR_MS, 500_000), (1, 3, t + 3 * HOUR_MS, 230_000)]
    )
    h = detect_rapid_pass_through(idx, one())
    assert h.fired[0] and h.hops[0] == 1 and h.first_ts[0] == t + 3 * HOUR_MS
    assert h.amount[0] == 800_000 and h.detail[0]["account"] == 1
    assert [p.tolist() for p in h.evidence[0]] == [[0, 1, 2]]


def test_rapid_pass_through_lookalikes():
    t = 10 * HOUR_MS
    slow = graph([(0, 1, t, 800_000), (1, 2, t + 30 * HOUR_MS, 790_000)])
    half = graph([(0, 1, t, 800_000), (1, 2, t + HOUR_MS, 400_000)])
    before = graph([(0, 1, t, 800_000), (1, 2, t - HOUR_MS, 790_000)])
    for idx in (slow, half, before):
        assert not detect_rapid_pass_through(idx, one()).fired[0]
    # d forwarding the proceeds itself is large_outflow, not pass-through (unless asked)
    own = graph([(0, 1, t, 800_000), (1, 2, t + HOUR_MS, 790_000)])
    assert not detect_rapid_pass_through(own, one(targets=[0, 1])).fired[0]
    p = RapidPassThroughParams(exclude_borrower_side=False)
    assert detect_rapid_pass_through(own, one(targets=[0, 1]), params=p).fired[0]
    d_only = graph([(0, 1, t, 950_000)])
    assert not detect_rapid_pass_through(d_only, one()).fired[0]
    p = RapidPassThroughParams(include_disbursement_account=True)
    h = detect_rapid_pass_through(d_only, one(), params=p)
    assert h.fired[0] and h.hops[0] == 0 and h.amount[0] == A


# ----------------------------------------------------------------------------- large outflow


def test_large_outflow():
    idx = graph([(0, 1, 10, 400_000), (0, 2, 20, 600_000), (0, 3, 80 * HOUR_MS, 900_000)])
    h = detect_large_outflow(idx, one())
    assert h.fired[0] and h.amount[0] == 600_000 and h.first_ts[0] == 20 and h.hops[0] == 1
    assert [p.tolist() for p in h.evidence[0]] == [[1]]
    # small pieces, too late, before t0
    assert not detect_large_outflow(idx, one(t0=21)).fired[0]
    assert not detect_large_outflow(idx, one(), params=LargeOutflowParams(ratio=0.7)).fired[0]
    assert detect_large_outflow(idx, one(), params=LargeOutflowParams(ratio=0.7, within_hours=100)).fired[
        0
    ]


# ----------------------------------------------------------------------------- cycles


def test_transfer_cycle_fires():
    idx = graph([(0, 1, 1, 900_000), (1, 2, 2, 880_000), (2, 3, 3, 870_000), (3, 1, 4, 860_000)])
    h = detect_transfer_cycle(idx, one())
    assert h.fired[0] and h.hops[0] == 1 and h.first_ts[0] == 4 and h.amount[0] == 860_000
    assert h.detail[0]["cycle_length"] == 3 and h.detail[0]["account"] == 1
    assert [p.tolist() for p in h.evidence[0]] == [[0, 1, 2, 3]]


def test_transfer_cycle_lookalikes():
    # wrong time order inside the cycle
    idx = graph([(0, 1, 1, 900_000), (1, 2, 3, 880_000), (2, 3, 2, 870_000), (3, 1, 4, 860_000)])
    assert not detect_transfer_cycle(idx, one()).fired[0]
    # cycle closed before the proceeds arrived
    idx = graph([(0, 1, 10, 900_000), (1, 2, 2, 880_000), (2, 3, 3, 870_000), (3, 1, 4, 860_000)])
    assert not detect_transfer_cycle(idx, one()).fired[0]
    # a flow-back path d -> x -> y -> d is not a cycle (unless asked)
    fb = graph([(0, 1, 1, 900_000), (1, 2, 2, 880_000), (2, 0, 3, 870_000)])
    assert not detect_transfer_cycle(fb, one(targets=[0])).fired[0]
    p = TransferCycleParams(exclude_borrower_side=False)
    assert detect_transfer_cycle(fb, one(targets=[0]), p).fired[0]
    # a 2-cycle is too short by default; ratio band
    two = graph([(0, 1, 1, 900_000), (1, 2, 2, 880_000), (2, 1, 3, 870_000)])
    assert not detect_transfer_cycle(two, one()).fired[0]
    assert detect_transfer_cycle(two, one(), TransferCycleParams(min_hops=2)).fired[0]
    band = TransferCycleParams(min_hops=2, amount_ratio_low=0.98, amount_ratio_high=1.01)
    assert detect_transfer_cycle(two, one(), band).fired[0]
    band = TransferCycleParams(min_hops=2, amount_ratio_low=0.995)
    assert not detect_transfer_cycle(two, one(), band).fired[0]


# ----------------------------------------------------------------------------- split


def test_split_disbursement():
    p = SplitDisbursementParams()
    near = [480_000_000, 450_000_000, 499_999_999]
    starts = [0, 10 * DAY_MS, 25 * DAY_MS]
    # three linked borrowers (group 0), a fourth loan above the threshold, an unlinked one
    h = detect_split_disbursement(
        np.array([0, 0, 1, 2, 3, 4]),
        np.array([0, 1, 2, 3, 4]),
        np.array([*near, 500_000_000, 480_000_000]),
        np.array([*starts, 5 * DAY_MS, 6 * DAY_MS]),
        np.array([0, 0, 0, 0, 9]),
        p,
    )
    assert h.fired.tolist() == [True, True, True, True, False, False]
    assert h.detail[0]["loans"] == [0, 1, 2] and h.first_ts[0] == 0 and h.metric[0] == 3
    # spread over more than the window: no run of 3
    h = detect_split_disbursement(np.arange(3), np.arange(3), np.array(near),
                                  np.array([0, 20 * DAY_MS, 40 * DAY_MS]), np.zeros(3, np.int64), p)  # fmt: skip
    assert not h.fired.any()
