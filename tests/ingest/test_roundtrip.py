"""Round trips: random valid values written as CSV text or typed Parquet columns are
read back from the store unchanged, and the odd Parquet types are read by their meaning."""

from __future__ import annotations

import csv
import decimal
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowgraph.core.values import AMOUNT_MAX, TS_MAX, TS_MIN, format_amount
from flowgraph.ingest.load import ingest_paths
from flowgraph.store.embedded import Store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata"]

# text kept as written: letters, digits (full-width ones too), punctuation, symbols and
# inner spaces of any script; no surrounding white space (that is cut) and never empty
text = st.text(
    st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="\x00"), min_size=1, max_size=12
).map(str.strip).filter(bool)
ms = st.integers(TS_MIN, TS_MAX - 1)
minor = st.one_of(st.integers(0, 10**6), st.integers(0, AMOUNT_MAX))
rows = st.lists(st.tuples(text, ms, text, text, minor, text, st.sampled_from(range(6)), st.integers(-14 * 60, 14 * 60)),
                min_size=1, max_size=25, unique_by=lambda r: r[0])


def _iso(t: int, offset_min: int, style: int) -> str:
    """``t`` (UTC ms) written one of the ways the contract reads, all meaning ``t``."""
    utc = EPOCH + timedelta(milliseconds=t)
    if style == 0:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}Z"
    if style == 1:  # local wall time with its offset
        local = utc + timedelta(minutes=offset_min)
        sign = "+" if offset_min >= 0 else "-"
        hh, mm = divmod(abs(offset_min), 60)
        return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{t % 1000:03d}{sign}{hh:02d}{mm:02d}"
    if style == 2 and 10**10 <= t:  # epoch ms
        return str(t)
    if style == 3:  # naive = UTC, with sub-millisecond digits that are cut
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}999"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}+00:00"


def _check(store: Store, data) -> None:
    got = store.read("transactions").sort("tx_id")
    want = sorted(data, key=lambda r: r[0])
    assert got["tx_id"].to_list() == [r[0] for r in want]
    assert got["ts"].to_list() == [r[1] for r in want]
    assert got["src_account"].to_list() == [r[2] for r in want]
    assert got["dst_account"].to_list() == [r[3] for r in want]
    assert got["amount"].to_list() == [r[4] for r in want]
    assert got["memo"].to_list() == [r[5] for r in want]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_csv_round_trip(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("rt")
    path = tmp / "transactions.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["tx_id", "ts", "src_account", "dst_account", "amount", "memo"])
        for tx, t, s, d, a, memo, style, off in data:
            w.writerow([tx, _iso(t, off, style), s, d, format_amount(a), memo])
    store = Store.init(tmp / "s")
    rep = ingest_paths(store, [path])
    assert rep["rejected"] == 0, rep
    _check(store, data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows, scale=st.integers(2, 6), zone=st.sampled_from([None, *ZONES]))
def test_parquet_round_trip(tmp_path_factory, data, scale, zone):
    tmp = tmp_path_factory.mktemp("rt")
    path = tmp / "transactions.parquet"
    ts = pl.Series("ts", [EPOCH + timedelta(milliseconds=r[1]) for r in data], pl.Datetime("us", "UTC"))
    ts = ts.dt.convert_time_zone(zone) if zone else ts.dt.replace_time_zone(None)
    pl.DataFrame({
        "tx_id": [r[0] for r in data], "ts": ts,
        "src_account": [r[2] for r in data], "dst_account": [r[3] for r in data],
        "amount": pl.Series([decimal.Decimal(r[4]).scaleb(-2) for r in data], dtype=pl.Decimal(38, scale)),
        "memo": [r[5] for r in data],
    }).write_parquet(path)
    store = Store.init(tmp / "s")
    rep = ingest_paths(store, [path])
    assert rep["rejected"] == 0, rep
    _check(store, data)


def test_parquet_types_read_by_meaning(tmp_path):
    """08:00+08:00 is 00:00Z; decimals fitting two places load, others and floats are
    refused with the reason; dates before 1970 are the same in CSV and Parquet."""
    shanghai = datetime(2024, 3, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    pl.DataFrame({
        "tx_id": ["t1", "t2", "t3"],
        "ts": pl.Series([shanghai, shanghai, shanghai]).dt.convert_time_zone("Asia/Shanghai"),
        "src_account": ["a", "a", "a"], "dst_account": ["b", "b", "b"],
        "amount": pl.Series([decimal.Decimal("1.5000"), decimal.Decimal("1.2345"), decimal.Decimal("0")], dtype=pl.Decimal(20, 4)),
    }).write_parquet(tmp_path / "transactions.parquet")
    pl.DataFrame({"loan_id": ["L1"], "borrower_id": ["p"], "amount": [100], "maturity_date": [date(1965, 3, 4)]}
                 ).write_parquet(tmp_path / "loans.parquet")
    pl.DataFrame({"loan_id": ["L5", "L6"], "borrower_id": ["p", "p"], "amount": [100.0, 0.1]}
                 ).write_parquet(tmp_path / "loans_float.parquet")
    (tmp_path / "loans_csv.csv").write_text("loan_id,borrower_id,amount,maturity_date\nL3,p,100,1965-03-04\nL4,p,100,19650304\n")
    store = Store.init(tmp_path / "s")
    rep = ingest_paths(store, [tmp_path / "transactions.parquet", tmp_path / "loans.parquet", tmp_path / "loans_float.parquet"])
    rep2 = ingest_paths(store, [tmp_path / "loans_csv.csv"], table="loans")
    tx = store.read("transactions").sort("tx_id")
    assert tx["tx_id"].to_list() == ["t1", "t3"]
    assert tx["ts"].to_list() == [1709251200000] * 2  # 2024-03-01T00:00:00Z
    assert tx["amount"].to_list() == [150, 0]
    q = pl.read_csv(rep["quarantine"]["transactions"], infer_schema=False)
    assert "more than 2 decimals '1.2345'" in q["reason"][0]
    q = pl.read_csv(rep["quarantine"]["loans"], infer_schema=False)
    assert q["loan_id"].to_list() == ["L5", "L6"] and q["reason"].str.contains("floating-point value").all()
    assert rep2["tables"]["loans"]["loaded"] == 2
    loans = store.read("loans")
    assert loans["loan_id"].to_list() == ["L1", "L3", "L4"] and loans["amount"].to_list() == [10000] * 3
    assert set(loans["maturity_date"].to_list()) == {int((datetime(1965, 3, 4, tzinfo=UTC) - EPOCH).total_seconds() * 1000)}
