"""Fast paths of ingest: they must give exactly what the slow paths give.

- validation: the numba fast pass + full parser on flagged rows equals the full parser
  on every row;
- merge: key-ordered input skips the sort, an existing table is merged linearly;
- re-ingest of identical files into an unchanged store skips reading the data, and
  notices a changed file, a changed store and a removed quarantine file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from flowgraph.ingest.load import ingest_paths
from flowgraph.ingest.merge import merge_table
from flowgraph.ingest.validate import REASON, ROW, _typed_and_errors, validate
from flowgraph.store.embedded import Store

HEADER = ["tx_id", "ts", "src_account", "dst_account", "amount", "channel", "memo"]

# values around every edge of the fast pass: layouts it takes, layouts it leaves to the
# full parser, padding (ASCII and Unicode whitespace), blanks, calendar limits
TS_VALUES = [
    "0", "1704067200000", "123456789012345", "1234567890123456", "-5", "+5",
    "2024-01-01", "2024-01-01Z", "2024-02-29", "2023-02-29", "2024-04-31", "2024-13-01",
    "2024-01-01T00:00:00Z", "2024-01-01T23:59:59.999Z", "2024-01-01 10:00:00.5",
    "2024-01-01T10:00:00.123456789", "2024-01-01T10:00:00.1234567891Z", "2024-01-01T10:00",
    "2024-01-01T24:00:00", "2024-12-31T23:59:60Z", "2024-01-01T10:00:00+08:00",
    "2024-01-01T10:00:00-0130", "0001-01-01", "0000-01-01", "1969-12-31T23:59:59.999Z",
    " 2024-01-01", "2024-01-01 ", "\u30002024-01-01", "", "  ", "yesterday", "2024-1-1",
    "2024-01-01T", "2024-01-01T10:00:00.",
    # the odd values of issue 21: full-width digits, offsets, compact dates, epoch units, range
    "２０２４－０３－０１", "2024-03-01T08:00:00+14:00", "2024-03-01T08:00:00+14:01",
    "2024-03-01T08:00:00+25:00", "2024-03-01T08:00:00+99:99", "2024-03-01T08:00:00-09:60",
    "20240301", "20240230", "19691231", "1709251200", "170925120", "1709251200000",
    "10000000000", "9999999999", "7258118399999", "7258118400000", "1899-12-31T23:59:59.999Z",
    "1900-01-01", "2199-12-31T23:59:59.999", "2200-01-01", "1969-07-20T20:17:40Z", "١٧٠٩٢٥١٢٠٠٠٠٠",
]
AMOUNT_VALUES = [
    "0", "0.00", "1", "1.5", "1.50", "00.10", "1.505", "-1.00", "-0", "+1", "1e5", "1,000.00",
    ".5", "5.", " 5.00", "5.00 ", "1234567890123456.99", "12345678901234567.00",
    "0000000000000001", "00000000000000001", "", " ", "abc", "\u00a05",
    "０５", "1.2３", "１２３．４５", "١٢", "1.500", "1.5000001", "9999999999999999.99",
    "10000000000000000.00", "NaN", "inf", "-inf", "1.0 (floating point)", "0.",
]
TEXT_VALUES = ["a", "A1", " a", "a ", "\ta", "名字", " 名字\u3000", "", "  ", "x y", "\u00a0"]


def _full_parser(raw: pl.DataFrame, table: str, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The reference: the full parser on every row."""
    from flowgraph.core.schema import TABLES

    t = TABLES[table]
    df = raw.with_row_index(ROW, offset=1)
    names = df.columns
    extras = [n for n in names if n not in t.column_names and n != ROW]
    typed, errors = _typed_and_errors(t, names)
    all_errors = pl.concat_str(errors, separator="; ", ignore_nulls=True)
    all_errors = pl.when(all_errors == "").then(None).otherwise(all_errors)
    checked = df.with_columns(pl.format("{} row {}: {}", pl.lit(source), pl.col(ROW), all_errors).alias(REASON))
    good = checked.filter(pl.col(REASON).is_null()).select([*typed, *extras, ROW])
    bad = checked.filter(pl.col(REASON).is_not_null()).select([*names, REASON])
    return good, bad


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(TEXT_VALUES),
            st.sampled_from(TS_VALUES),
            st.sampled_from(TEXT_VALUES),
            st.sampled_from(AMOUNT_VALUES),
            st.sampled_from([*TEXT_VALUES, None]),
            st.one_of(st.none(), st.text(max_size=4)),
        ),
        max_size=40,
    )
)
def test_fast_validation_equals_full_parser(rows):
    raw = pl.DataFrame(
        {
            "tx_id": [f"t{i}{r[0]}" for i, r in enumerate(rows)],
            "ts": [r[1] for r in rows],
            "src_account": [r[2] for r in rows],
            "dst_account": ["b"] * len(rows),
            "amount": [r[3] for r in rows],
            "channel": [r[4] for r in rows],
            "memo": [r[5] for r in rows],
            "note": ["x"] * len(rows),
        },
        schema={c: pl.Utf8 for c in [*HEADER, "note"]},
    )
    good, bad = validate(raw.lazy(), "transactions", "f.csv")
    ref_good, ref_bad = _full_parser(raw, "transactions", "f.csv")
    assert_frame_equal(good.sort(ROW), ref_good.select(good.columns).sort(ROW))
    assert_frame_equal(bad.sort(ROW), ref_bad.sort(ROW))


def test_fast_validation_other_tables():
    raw = pl.DataFrame(
        {
            "loan_id": ["L1", "L2", "L3", " L4"],
            "borrower_id": ["p", "p", "", "p"],
            "amount": ["1.00", "2", "x", "3"],
            "payment_mode": ["Self", "bad", "entrusted", None],
            "rate": ["0.05", "abc", "", " 1e-3 "],
            "maturity_date": ["2025-01-01", "", "2025-02-30", "1700000000000"],
        }
    )
    good, bad = validate(raw.lazy(), "loans", "loans.csv")
    ref_good, ref_bad = _full_parser(raw, "loans", "loans.csv")
    assert_frame_equal(good.sort(ROW), ref_good.select(good.columns).sort(ROW))
    assert_frame_equal(bad.sort(ROW), ref_bad.sort(ROW))


KEY_PREFIX = ["t", "t1", "é", "名", "T", "t\u00a0"]


def _naive_merge(existing: pl.DataFrame, new: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    stored = {tuple(r[k] for k in key) for r in existing.iter_rows(named=True)}
    rows = existing.to_dicts()
    for r in new.sort(ROW).iter_rows(named=True):
        k = tuple(r[c] for c in key)
        if k not in stored:
            stored.add(k)
            rows.append({c: r[c] for c in existing.columns})
    return pl.DataFrame(rows, schema=existing.schema).sort(key)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stored=st.sets(st.integers(0, 30), max_size=15),
    new=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=25),
    ordered=st.booleans(),
)
def test_merge_matches_naive_merge(stored, new, ordered):
    def frame(ids, amounts):
        return pl.DataFrame(
            {
                # prefixes of each other and non-ASCII: the merge walk compares bytes
                "tx_id": [f"{KEY_PREFIX[i % len(KEY_PREFIX)]}{i}" for i in ids],
                "ts": [1] * len(ids),
                "src_account": ["a"] * len(ids),
                "dst_account": ["b"] * len(ids),
                "amount": amounts,
                "currency": [None] * len(ids),
                "channel": [None] * len(ids),
                "memo": [None] * len(ids),
            },
            schema={"tx_id": pl.Utf8, "ts": pl.Int64, "src_account": pl.Utf8, "dst_account": pl.Utf8,
                    "amount": pl.Int64, "currency": pl.Utf8, "channel": pl.Utf8, "memo": pl.Utf8},
        )

    existing = frame(sorted(stored), [100] * len(stored))
    if ordered:
        new = sorted(new)
    incoming = frame([i for i, _ in new], [100 + a for _, a in new]).with_row_index(ROW, offset=1)
    merged, conflicts, dups = merge_table(existing, incoming, "transactions")
    assert_frame_equal(merged, _naive_merge(existing, incoming, ["tx_id"]))
    assert merged.height - existing.height + conflicts.height + dups == len(new)
    # a conflict is a key already taken (stored or earlier in the input) with other content
    if conflicts.height:
        assert set(conflicts["tx_id"].to_list()) <= set(merged["tx_id"].to_list())


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER[:6])
        w.writerows(rows)
    return path


ROWS = [
    ["t1", "2024-01-01", "a", "b", "10.00", ""],
    ["t2", "2024-01-02", "b", "a", "5", ""],
    ["t3", "not a time", "b", "a", "5", ""],
    ["t2", "2024-01-02", "b", "a", "6", ""],
]


def test_reingest_shortcut_reports_what_a_full_reingest_reports(tmp_path):
    src = _write(tmp_path / "transactions.csv", ROWS)
    fast_store, slow_store = Store.init(tmp_path / "fast"), Store.init(tmp_path / "slow")
    first = ingest_paths(fast_store, [src])
    ingest_paths(slow_store, [src])
    assert first["tables"]["transactions"] == {"loaded": 2, "rejected": 2, "duplicates": 0}
    again = ingest_paths(fast_store, [src])
    assert again["same_as"] == first["ingest_id"]
    # the slow path: ingest_frames without a fingerprint reads and merges everything
    from flowgraph.ingest.load import ingest_frames
    from flowgraph.ingest.read import read_text_frame

    slow = ingest_frames(slow_store, [(str(src), "transactions", read_text_frame(src))])
    assert "same_as" not in slow
    for key in ("snapshot_id", "changed", "tables", "loaded", "rejected"):
        assert again[key] == slow[key], key
    assert again["snapshot_id"] == first["snapshot_id"]
    fast_q = Path(again["quarantine"]["transactions"]).read_text()
    slow_q = Path(slow["quarantine"]["transactions"]).read_text()
    assert fast_q == slow_q and "not a time" in fast_q
    assert Path(again["quarantine"]["transactions"]).parent.name == again["ingest_id"]
    # a third time counts the same (the shortcut's own log line is reused correctly)
    third = ingest_paths(fast_store, [src])
    assert third["tables"] == again["tables"] and third["same_as"] == again["ingest_id"]


def test_reingest_shortcut_notices_a_changed_file(tmp_path):
    src = _write(tmp_path / "transactions.csv", ROWS[:2])
    store = Store.init(tmp_path / "s")
    first = ingest_paths(store, [src])
    _write(src, [*ROWS[:2], ["t9", "2024-01-03", "a", "b", "1", ""]])  # one more row
    rep = ingest_paths(store, [src])
    assert "same_as" not in rep
    assert rep["tables"]["transactions"] == {"loaded": 1, "rejected": 0, "duplicates": 2}
    assert rep["snapshot_id"] != first["snapshot_id"]
    # same bytes under another name: reasons would name the other file, so no shortcut
    other = tmp_path / "copy"
    other.mkdir()
    copy = other / "transactions.csv"
    copy.write_bytes(src.read_bytes())
    assert "same_as" not in ingest_paths(store, [copy])


def test_reingest_shortcut_notices_a_changed_store(tmp_path):
    a = _write(tmp_path / "transactions.csv", ROWS[:2])
    b = _write(tmp_path / "transactions_b.csv", [["t1", "2024-01-01", "a", "b", "99.00", ""],
                                                  ["t7", "2024-01-05", "a", "b", "1", ""]])
    store = Store.init(tmp_path / "s")
    ingest_paths(store, [b])
    ingest_paths(store, [a])  # t1 conflicts with the stored t1
    ingest_paths(store, [b])  # unchanged store again... and the shortcut applies to b
    rep = ingest_paths(store, [a])
    assert rep["same_as"]  # the store is the snapshot that ingesting a produced
    assert rep["tables"]["transactions"] == {"loaded": 0, "rejected": 1, "duplicates": 1}
    c = _write(tmp_path / "transactions_c.csv", [["t8", "2024-01-06", "a", "b", "1", ""]])
    ingest_paths(store, [c])  # the store changes
    rep = ingest_paths(store, [a])
    assert "same_as" not in rep
    assert rep["tables"]["transactions"] == {"loaded": 0, "rejected": 1, "duplicates": 1}


def test_reingest_shortcut_needs_its_quarantine_file(tmp_path):
    src = _write(tmp_path / "transactions.csv", ROWS)
    store = Store.init(tmp_path / "s")
    first = ingest_paths(store, [src])
    Path(first["quarantine"]["transactions"]).unlink()
    rep = ingest_paths(store, [src])
    assert "same_as" not in rep
    assert rep["tables"]["transactions"] == {"loaded": 0, "rejected": 2, "duplicates": 2}
    assert Path(rep["quarantine"]["transactions"]).exists()


def test_reingest_shortcut_ignores_a_damaged_log_line(tmp_path):
    src = _write(tmp_path / "transactions.csv", ROWS[:2])
    store = Store.init(tmp_path / "s")
    first = ingest_paths(store, [src])
    with open(tmp_path / "s" / "ingests.jsonl", "a") as f:
        f.write('{"fingerprint": "cut sho')
    rep = ingest_paths(store, [src])
    assert rep["same_as"] == first["ingest_id"]
    lines = (tmp_path / "s" / "ingests.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["fingerprint"]


@pytest.mark.parametrize("shuffle", [False, True])
def test_unordered_input_is_stored_sorted(tmp_path, shuffle):
    ids = [f"k{i:03d}" for i in range(50)]
    if shuffle:
        ids = ids[::7] + [i for j, i in enumerate(ids) if j % 7]
    src = _write(tmp_path / "transactions.csv", [[i, "2024-01-01", "a", "b", "1", ""] for i in ids])
    store = Store.init(tmp_path / "s")
    ingest_paths(store, [src])
    more = _write(tmp_path / "transactions_2.csv", [["k0205", "2024-01-01", "a", "b", "1", ""],
                                                     ["a", "2024-01-01", "a", "b", "1", ""]])
    ingest_paths(store, [more])
    stored = store.read("transactions")["tx_id"].to_list()
    assert stored == sorted([*ids, "k0205", "a"])


def test_many_batches_with_scattered_bad_rows(tmp_path):
    n = 120_000
    ts = [f"2024-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z" for i in range(n)]
    amount = [f"{i}.{i % 100:02d}" for i in range(n)]
    for i in range(0, n, 9_973):
        ts[i] = "bad"
    for i in range(5, n, 17_011):
        amount[i] = f" {amount[i]}"  # padded: flagged by the fast pass, good after all
    raw = pl.DataFrame({"tx_id": [f"k{i:07d}" for i in range(n)], "ts": ts, "src_account": ["a"] * n,
                        "dst_account": ["b"] * n, "amount": amount})
    src = tmp_path / "transactions.csv"
    raw.write_csv(src)
    from flowgraph.ingest.read import read_text_frame

    good, bad = validate(read_text_frame(src), "transactions", str(src))
    ref_good, ref_bad = _full_parser(raw, "transactions", str(src))
    assert bad.height == len(range(0, n, 9_973))
    assert_frame_equal(good.sort(ROW), ref_good.select(good.columns).sort(ROW))
    assert_frame_equal(bad.sort(ROW), ref_bad.sort(ROW))


def test_reingest_shortcut_does_not_hide_a_missing_table_file(tmp_path):
    src = _write(tmp_path / "transactions.csv", ROWS[:2])
    store = Store.init(tmp_path / "s")
    ingest_paths(store, [src])
    store.table_path("transactions").unlink()
    from flowgraph.core.errors import StoreError

    with pytest.raises(StoreError):
        ingest_paths(store, [src])
