"""Every detector equals its slow reference on random graphs (hypothesis)."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraph.core.values import DAY_MS, HOUR_MS
from flowgraph.engine.hits import Disbursements
from flowgraph.rules.kinds.flow_back import (
    FlowBackRuleParams,
    detect_flow_back,
    reference_flow_back,
)
from flowgraph.rules.kinds.large_outflow import (
    LargeOutflowParams,
    detect_large_outflow,
    reference_large_outflow,
)
from flowgraph.rules.kinds.prohibited_destination import (
    ProhibitedDestinationParams,
    detect_prohibited_destination,
    reference_prohibited_destination,
)
from flowgraph.rules.kinds.rapid_pass_through import (
    RapidPassThroughParams,
    detect_rapid_pass_through,
    reference_rapid_pass_through,
)
from flowgraph.rules.kinds.repay_with_loan import (
    RepayWithLoanParams,
    detect_repay_with_loan,
    reference_repay_with_loan,
)
from flowgraph.rules.kinds.split_disbursement import (
    SplitDisbursementParams,
    detect_split_disbursement,
    reference_split_disbursement,
)
from flowgraph.rules.kinds.transfer_cycle import (
    TransferCycleParams,
    detect_transfer_cycle,
    reference_transfer_cycle,
)
from tests.rules.tiny import graph


@st.composite
def scenario(draw, max_n=6, max_m=16):
    n = draw(st.integers(2, max_n))
    m = draw(st.integers(0, max_m))
    edges = [
        (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)), draw(st.integers(1, 20)),
         draw(st.sampled_from([50, 100, 300, 900])))
        for _ in range(m)
    ]  # fmt: skip
    edges = [e for e in edges if e[0] != e[1]] or [(0, 1, 5, 100)]
    N = draw(st.integers(1, 3))
    accts = [draw(st.integers(0, n - 1)) for _ in range(N)]
    t0s = [draw(st.integers(0, 8)) for _ in range(N)]
    targets = [sorted(draw(st.sets(st.integers(0, n - 1), max_size=2))) for _ in range(N)]
    return n, edges, Disbursements.of(accts, t0s, [1000] * N, targets)


common = dict(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def same(a, b):
    assert a.fired.tolist() == b.fired.tolist()
    assert a.amount.tolist() == b.amount.tolist()
    assert a.first_ts.tolist() == b.first_ts.tolist()
    assert a.hops.tolist() == b.hops.tolist()


WIN = dict(window_days=12 / DAY_MS)  # 12 ms


@settings(**common)
@given(scenario(), st.integers(0, 4), st.data())
def test_repay_equals_reference(sc, H, data):
    n, edges, disb = sc
    # a few accounts repay a few loans (-1: a loan the store does not hold), some repeatedly
    reps = [(data.draw(st.integers(0, n - 1)), data.draw(st.integers(-8, 22)),
             data.draw(st.sampled_from([10, 100, 500])), data.draw(st.integers(-1, 1)))
            for _ in range(data.draw(st.integers(0, 8)))]  # fmt: skip
    cols = (
        [np.array(c, np.int64) for c in zip(*reps, strict=True)]
        if reps
        else [np.zeros(0, np.int64)] * 4
    )
    p = RepayWithLoanParams(max_hops=H, min_amount_ratio=0.1, min_repay_ratio=0.2,
                            routine_after=data.draw(st.integers(0, 2)), routine_factor=data.draw(st.sampled_from([1.0, 5.0])),
                            **WIN)  # fmt: skip
    idx = graph(edges, n)
    same(
        detect_repay_with_loan(idx, disb, *cols, p), reference_repay_with_loan(idx, disb, *cols, p)
    )


@settings(**common)
@given(scenario(), st.integers(1, 4), st.booleans(), st.data())
def test_prohibited_equals_reference(sc, H, inc, data):
    n, edges, disb = sc
    cat = np.array([data.draw(st.sampled_from([-1, -1, 0, 1])) for _ in range(n)], np.int16)
    p = ProhibitedDestinationParams(
        max_hops=H, categories=("brokerage", "real_estate"), include_disbursement_account=inc,
        allowed_by_purpose={"home": ("real_estate",)}, **WIN,
    )  # fmt: skip
    purposes = [data.draw(st.sampled_from([None, "home", "other"])) for _ in range(len(disb))]
    benign = data.draw(benign_flags(n))
    names = ("brokerage", "real_estate")
    idx = graph(edges, n)
    same(detect_prohibited_destination(idx, disb, cat, names, purposes, benign, params=p),
         reference_prohibited_destination(idx, disb, cat, names, purposes, benign, params=p))  # fmt: skip


@settings(**common)
@given(
    scenario(),
    st.integers(1, 4),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.5, 0.9, 1.0]),
    st.integers(1, 6),
    st.integers(0, 2),
    st.integers(0, 8),
    st.data(),
)
def test_pass_through_equals_reference(sc, H, inc, excl, ratio, within, known, hist, data):
    n, edges, disb = sc
    p = RapidPassThroughParams(
        max_hops=H,
        include_disbursement_account=inc,
        exclude_borrower_side=excl,
        forward_ratio=ratio,
        within_hours=within / HOUR_MS,
        known_payments=known,
        history_days=hist / DAY_MS,
        **WIN,
    )
    benign = data.draw(benign_flags(n))
    idx = graph(edges, n)
    same(detect_rapid_pass_through(idx, disb, benign, p), reference_rapid_pass_through(idx, disb, benign, p))


def benign_flags(n):
    """None, or a random suppression flag per account."""
    return st.one_of(st.none(), st.lists(st.sampled_from([0, 0, 1]), min_size=n, max_size=n).map(
        lambda f: np.array(f, np.uint8)))  # fmt: skip


@settings(**common)
@given(scenario(), st.sampled_from([0.05, 0.1, 0.3]), st.integers(1, 10), st.integers(0, 2), st.integers(0, 8),
       st.booleans(), st.booleans(), st.data())  # fmt: skip
def test_large_outflow_equals_reference(sc, ratio, within, known, hist, side, payee, data):
    n, edges, disb = sc
    p = LargeOutflowParams(ratio=ratio, within_hours=within / HOUR_MS, known_payments=known,
                           history_days=hist / DAY_MS, exclude_borrower_side=side, exclude_payee=payee)  # fmt: skip
    disb = dataclasses.replace(disb, payee=np.array([data.draw(st.integers(-1, n - 1)) for _ in range(len(disb))]))
    benign = data.draw(benign_flags(n))
    idx = graph(edges, n)
    same(detect_large_outflow(idx, disb, benign, p), reference_large_outflow(idx, disb, benign, p))


@settings(**common)
@given(scenario(4, 24), st.integers(0, 3), st.integers(2, 4), st.booleans(), st.booleans())
def test_cycle_equals_reference(sc, R, Lmax, excl, band):
    n, edges, disb = sc
    p = TransferCycleParams(reach_hops=R, min_hops=2, max_hops=Lmax, exclude_borrower_side=excl,
                            amount_ratio_low=0.5 if band else 0, amount_ratio_high=2 if band else 0,
                            window_days=25 / DAY_MS, min_amount_ratio=0.05)  # fmt: skip
    idx = graph(edges, n)
    same(detect_transfer_cycle(idx, disb, p), reference_transfer_cycle(idx, disb, p))


@settings(**common)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.sampled_from([400, 450, 499, 500, 520]), st.integers(0, 40)),
             min_size=1, max_size=12),
    st.lists(st.integers(0, 2), min_size=5, max_size=5),
    st.integers(2, 4),
    st.sampled_from([0.0, 5.0, 10.0, 30.0]),
)
def test_split_equals_reference(loans, groups, min_loans, days):
    """Loans (borrower, amount, start day) of borrowers in up to three groups; every loan disbursed once."""
    p = SplitDisbursementParams(threshold=500, band=0.15, min_loans=min_loans, window_days=days)
    args = (
        np.arange(len(loans)), np.array([b for b, _, _ in loans]), np.array([a for _, a, _ in loans]),
        np.array([t * DAY_MS for _, _, t in loans]), np.array(groups),
    )
    got, ref = detect_split_disbursement(*args, p), reference_split_disbursement(*args, p)
    same(got, ref)
    assert [got.detail[i].get("n_loans", 0) for i in range(len(got))] == [
        len(got.detail[i]["loans"]) if got.fired[i] else 0 for i in range(len(got))
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario(), st.integers(1, 4), st.sampled_from(["greedy", "maxflow"]), st.integers(1, 3))
def test_flow_back_kind_equals_reference(sc, H, tracing, max_paths):
    """The kind's detector (engine batch) and reference (brute force over every chain) agree
    on the store-level view: fired, returned amount, first return, fewest kept hops."""
    n, edges, disb = sc
    p = FlowBackRuleParams(window_days=12 / DAY_MS, max_hops=H, tracing=tracing, max_paths=max_paths)
    idx = graph(edges, n)
    same(detect_flow_back(idx, disb, p), reference_flow_back(idx, disb, p))


def test_returned_amount_does_not_depend_on_the_listing_cap():
    """Two parallel transfers d→x and one x→d: two paths, one listed with max_paths=1, yet
    both carry money back, so 200 returns under either tracing (the reference once traced
    maxflow over the listed paths only and found 100)."""
    idx = graph([(0, 1, 10, 100), (0, 1, 20, 100), (1, 0, 30, 200)], 2)
    disb = Disbursements(np.array([0]), np.array([0]), np.array([200]), np.array([0, 1]), np.array([0]))
    for tracing in ("greedy", "maxflow"):
        p = FlowBackRuleParams(window_days=1000 / DAY_MS, max_hops=3, tracing=tracing, max_paths=1, min_amount_ratio=0.0)
        got, ref = detect_flow_back(idx, disb, p), reference_flow_back(idx, disb, p)
        assert got.amount.tolist() == ref.amount.tolist() == [200], tracing
