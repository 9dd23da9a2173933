"""Checks across rows and tables after an ingest's merge: warnings, counted and listed.

The policy (declared in :data:`flowgraph.core.schema.REFERENCES` and
:data:`~flowgraph.core.schema.CHECKS`, printed by ``flowgraph schema``): a row that names
an unknown account, party or loan, a self-transfer, a relation of a party to itself and a
loan disbursed beyond its amount are **loaded with a warning**, never refused. Refusing
would make the store depend on the order in which tables arrive (a bank sends
transactions daily and master data weekly), and every command copes with such rows.

When the checks run and against what:

- after this ingest's rows are merged, against the store as it will be (so the files of
  one ingest can come in any order);
- on the rows this ingest inserted; and, when a referenced table was empty before this
  ingest and is not now, once more on every stored row that refers to it (the check was
  *pending* until its table arrived);
- a referenced table that is still empty makes its check *pending* (named in the report,
  counting nothing) instead of warning about every row.

The ingest report has ``warnings`` (check → rows) and ``checks_pending``; the rows are in
``<store>/warnings/<ingest-id>.csv`` (check, table, key, source_file, row, reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from flowgraph.core.schema import CHECKS, REFERENCES, TABLES, Reference
from flowgraph.core.values import format_amount, money_sum
from flowgraph.ingest.quarantine import SOURCE
from flowgraph.ingest.validate import ROW

WARNING_COLUMNS = ("check", "table", "key", SOURCE, "row", "reason")


@dataclass
class Warnings:
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    rows: list[pl.DataFrame] = field(default_factory=list)

    def add(self, check: str, table: str, found: pl.DataFrame, reason: pl.Expr) -> None:
        if found.height == 0:
            return
        self.counts[check] = self.counts.get(check, 0) + found.height
        key = pl.concat_str([pl.col(k).cast(pl.Utf8) for k in TABLES[table].key], separator="|")
        for c in (SOURCE, ROW):
            if c not in found.columns:
                found = found.with_columns(pl.lit(None).alias(c))
        self.rows.append(
            found.select(
                pl.lit(check).alias("check"), pl.lit(table).alias("table"), key.alias("key"),
                pl.col(SOURCE).cast(pl.Utf8), pl.col(ROW).cast(pl.Int64).alias("row"), reason.alias("reason"),
            )
        )

    def frame(self) -> pl.DataFrame:
        if not self.rows:
            return pl.DataFrame(schema=dict.fromkeys(WARNING_COLUMNS, pl.Utf8))
        return pl.concat(self.rows, how="vertical_relaxed")


def run_checks(
    current: Callable[[str, list[str]], pl.DataFrame],
    rows_before: dict[str, int],
    inserted: dict[str, pl.DataFrame],
) -> Warnings:
    """Every check of the module docstring.

    ``current(table, columns)`` reads a table as it will be after this ingest;
    ``rows_before`` are the tables' row counts before it; ``inserted`` the rows it
    inserted per table (contract columns plus ``source_file`` and ``__row``).
    """
    w = Warnings()
    rows_after = {t: (current(t, [TABLES[t].key[0]]).height if t in inserted else n) for t, n in rows_before.items()}
    for ref in REFERENCES:
        _reference(w, ref, current, rows_before, rows_after, inserted)
    tx = inserted.get("transactions")
    if tx is not None and tx.height:
        w.add("transactions.self_transfer", "transactions", tx.filter(pl.col("src_account") == pl.col("dst_account")),
              pl.format("self-transfer: src_account = dst_account = '{}'", pl.col("src_account")))
    rel = inserted.get("relations")
    if rel is not None and rel.height:
        w.add("relations.self_relation", "relations", rel.filter(pl.col("party_a") == pl.col("party_b")),
              pl.format("relation '{}' of party '{}' to itself", pl.col("relation"), pl.col("party_a")))
    _over_loan_amount(w, current, inserted)
    assert set(w.counts) <= {r.name for r in REFERENCES} | set(CHECKS)
    return w


def _reference(w: Warnings, ref: Reference, current, rows_before, rows_after, inserted) -> None:
    if rows_after.get(ref.table, 0) == 0:
        return
    known = current(ref.target, [ref.target_column])[ref.target_column]
    if known.len() == 0:
        w.pending.append(ref.name)
        return
    if rows_before.get(ref.target, 0) == 0 and ref.target in inserted:
        # the referenced table has just arrived: check every stored row once
        rows = current(ref.table, [*dict.fromkeys([*TABLES[ref.table].key, *ref.columns])])
        new = inserted.get(ref.table)
        if new is not None and new.height:
            key = list(TABLES[ref.table].key)
            rows = rows.join(new.select([*key, SOURCE, ROW]), on=key, how="left")
    else:
        rows = inserted.get(ref.table)
        if rows is None or rows.height == 0:
            return
    known = known.unique().implode()
    unknown = [~pl.col(c).is_in(known) for c in ref.columns]
    if ref.all_unknown:  # one column at a time: the second only looks at the few rows left
        found = rows
        for u in unknown:
            found = found.filter(u)
    else:
        found = rows.filter(pl.any_horizontal(unknown))
    names = pl.concat_str(
        [pl.when(u).then(pl.format("{}='{}'", pl.lit(c), pl.col(c))) for c, u in zip(ref.columns, unknown, strict=True)],
        separator=", ", ignore_nulls=True,
    )
    w.add(ref.name, ref.table, found,
          pl.format("{}: {} not in {}.{}", pl.lit(ref.doc), names, pl.lit(ref.target), pl.lit(ref.target_column)))


def _over_loan_amount(w: Warnings, current, inserted) -> None:
    """Loans touched by this ingest (new loans, new disbursements) whose disbursements add
    up to more than the loan amount (summed exactly, as Int128)."""
    touched: set[str] = set()
    for t in ("loans", "disbursements"):
        if inserted.get(t) is not None:
            touched |= set(inserted[t]["loan_id"].to_list())
    if not touched:
        return
    ids = pl.Series(sorted(touched)).implode()
    loans = current("loans", ["loan_id", "amount"]).filter(pl.col("loan_id").is_in(ids))
    disb = current("disbursements", ["loan_id", "amount"]).filter(pl.col("loan_id").is_in(ids))
    if loans.height == 0 or disb.height == 0:
        return
    total = disb.group_by("loan_id").agg(money_sum(pl.col("amount")).alias("disbursed"))
    over = loans.join(total, on="loan_id").filter(pl.col("disbursed") > pl.col("amount")).sort("loan_id")
    if over.height == 0:
        return
    new_loans = inserted.get("loans")
    if new_loans is not None:
        over = over.join(new_loans.select("loan_id", SOURCE, ROW), on="loan_id", how="left")
    text = [f"disbursed {format_amount(d)} in total, more than the loan amount {format_amount(a)}"
            for d, a in zip(over["disbursed"].to_list(), over["amount"].to_list(), strict=True)]
    w.add("disbursements.over_loan_amount", "loans", over.with_columns(pl.Series("__why", text)), pl.col("__why"))
