"""Writing the bank: internal ids to ``P…``/``A…``/``L…``/``T…`` ids, and the contract CSV files.

Amounts are written as decimal strings with two places, timestamps as ISO-8601 UTC with
milliseconds and ``Z``, columns exactly as ``TABLES[t].column_names`` say. Transactions
are written day range by day range (``Scale.chunk_rows`` rows at a time), background and
injected transactions merged in time order, so that ``tx_id`` order is time order.

>>> import polars as pl
>>> df = pl.DataFrame({"amount": [5, 123456], "ts": [0, None]})
>>> df.select(amount_text("amount"), ts_text("ts")).rows()
[('0.05', '1970-01-01T00:00:00.000Z'), ('1234.56', None)]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from flowgraph.core.schema import TABLES
from flowgraph.core.values import DAY_MS
from flowgraph.synthetic.cases.kit import Case
from flowgraph.synthetic.constants import DAYS, START_MS
from flowgraph.synthetic.traffic import CHANNEL, MEMO, Traffic
from flowgraph.synthetic.world import World


def amount_text(col: str) -> pl.Expr:
    """Minor units as a decimal string with two places (non-negative amounts)."""
    return pl.format("{}.{}", pl.col(col) // 100, (pl.col(col) % 100).cast(pl.Utf8).str.zfill(2))


def ts_text(col: str) -> pl.Expr:
    """UTC ms as ISO-8601 with milliseconds and ``Z``; null stays null."""
    return (
        pl.when(pl.col(col).is_null())
        .then(pl.lit(None, pl.Utf8))
        .otherwise(pl.from_epoch(pl.col(col), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    )


def contract_frame(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Turn int64 money / ts columns into text and order columns as the contract says."""
    t = TABLES[table]
    exprs = []
    for c in t.columns:
        if c.name in t.derived and c.name not in df.columns:
            continue  # an id ingest derives (repayment_id): the file leaves it out
        if c.kind == "money":
            exprs.append(amount_text(c.name).alias(c.name))
        elif c.kind == "ts":
            exprs.append(ts_text(c.name).alias(c.name))
        else:
            exprs.append(pl.col(c.name))
    return df.select(exprs)


def write_table(out_dir: Path, table: str, df: pl.DataFrame) -> int:
    """Write ``<table>.csv`` in contract form; return its rows."""
    contract_frame(table, df).write_csv(out_dir / f"{table}.csv")
    return df.height


def shuffled_ids(prefix: str, n: int, rng: np.random.Generator, width: int) -> list[str]:
    """``n`` distinct ids ``<prefix><k>`` (k = 1..n, zero padded) in random order.

    >>> shuffled_ids("P", 3, np.random.Generator(np.random.PCG64(0)), 2)
    ['P03', 'P01', 'P02']
    """
    perm = rng.permutation(n) + 1
    return [f"{prefix}{int(k):0{width}d}" for k in perm]


@dataclass(frozen=True)
class Ids:
    """External ids by internal index: ``party[i]``, ``account[i]``, ``loan[i]``."""

    party: list[str]
    account: list[str]
    loan: list[str]

    def disbursement(self, loan: int, account: int, ts: int) -> str:
        """The explicit disbursement id ``<loan_id>:<account_id>:<ts_ms>``."""
        return f"{self.loan[loan]}:{self.account[account]}:{ts}"

    @classmethod
    def assign(cls, w: World, rng: np.random.Generator) -> Ids:
        """Shuffled, zero-padded ids, one digit wider than the count needs."""
        n_p, n_a, n_l = len(w.p_kind), len(w.a_owner), len(w.loans)
        pw, aw, lw = len(str(n_p)) + 1, len(str(n_a)) + 1, len(str(n_l)) + 1
        return cls(
            shuffled_ids("P", n_p, rng, pw),
            shuffled_ids("A", n_a, rng, aw),
            shuffled_ids("L", n_l, rng, lw),
        )


def write_entities(out_dir: Path, w: World, ids: Ids) -> dict[str, int]:
    """Every table but transactions; returns rows per table."""
    pid, aid, lid = ids.party, ids.account, ids.loan
    counts: dict[str, int] = {}
    counts["parties"] = write_table(
        out_dir,
        "parties",
        pl.DataFrame(
            {
                "party_id": pid,
                "kind": w.p_kind,
                "name": w.p_name,
                "id_number": w.p_idnum,
                "phone": w.p_phone,
                "address": w.p_addr,
                "industry": w.p_industry,
                "region": w.p_region,
            }
        )
        .with_columns(pl.col("industry").replace("", None))
        .sort("party_id"),
    )
    counts["accounts"] = write_table(
        out_dir,
        "accounts",
        pl.DataFrame(
            {
                "account_id": aid,
                "owner_id": [pid[o] for o in w.a_owner],
                "opened_at": w.a_opened,
                "kind": w.a_kind,
                "category": w.a_cat,
                "branch": w.a_branch,
                "status": w.a_status,
            },
            schema_overrides={"opened_at": pl.Int64},
        )
        .with_columns(pl.col("category").replace("", None))
        .sort("account_id"),
    )
    rel = (
        pl.DataFrame(
            {
                "party_a": [pid[r[0]] for r in w.rel],
                "party_b": [pid[r[1]] for r in w.rel],
                "relation": [r[2] for r in w.rel],
                "since": [r[3] for r in w.rel],
            },
            schema_overrides={"since": pl.Int64},
        )
        .unique(["party_a", "party_b", "relation"], keep="first", maintain_order=True)
        .sort(["party_a", "party_b", "relation"])
    )
    counts["relations"] = write_table(out_dir, "relations", rel)
    counts["loans"] = write_table(
        out_dir,
        "loans",
        pl.DataFrame(
            {
                "loan_id": lid,
                "borrower_id": [pid[x.borrower] for x in w.loans],
                "amount": [x.amount for x in w.loans],
                "product": [x.product for x in w.loans],
                "purpose": [x.purpose for x in w.loans],
                "branch": [x.branch for x in w.loans],
                "industry": [x.industry for x in w.loans],
                "region": [x.region for x in w.loans],
                "payment_mode": [x.mode for x in w.loans],
                "maturity_date": [x.maturity for x in w.loans],
                "rate": [x.rate for x in w.loans],
                "payee_account": [None if x.payee is None else aid[x.payee] for x in w.loans],
            },
            schema_overrides={"amount": pl.Int64, "maturity_date": pl.Int64, "payee_account": pl.Utf8},
        ).sort("loan_id"),
    )
    counts["disbursements"] = write_table(
        out_dir,
        "disbursements",
        pl.DataFrame(
            {
                "disbursement_id": [ids.disbursement(x[0], x[1], x[3]) for x in w.disb],
                "loan_id": [lid[x[0]] for x in w.disb],
                "account_id": [aid[x[1]] for x in w.disb],
                "amount": [x[2] for x in w.disb],
                "ts": [x[3] for x in w.disb],
            },
            schema_overrides={"amount": pl.Int64, "ts": pl.Int64},
        ).sort(["loan_id", "ts"]),
    )
    counts["repayments"] = write_table(
        out_dir,
        "repayments",
        pl.DataFrame(
            {
                "loan_id": [lid[x[0]] for x in w.repay],
                "account_id": [aid[x[1]] for x in w.repay],
                "amount": [x[2] for x in w.repay],
                "ts": [x[3] for x in w.repay],
            },
            schema_overrides={"amount": pl.Int64, "ts": pl.Int64},
        ).sort(["loan_id", "ts", "account_id"]),
    )
    counts["classifications"] = write_table(
        out_dir,
        "classifications",
        pl.DataFrame(
            {
                "loan_id": [lid[x[0]] for x in w.classif],
                "as_of": [x[1] for x in w.classif],
                "grade": [x[2] for x in w.classif],
                "source": [x[3] for x in w.classif],
                "reason": [x[4] or None for x in w.classif],
            },
            schema_overrides={"as_of": pl.Int64, "reason": pl.Utf8},
        ).sort(["loan_id", "as_of"]),
    )
    return counts


def write_transactions(
    out_dir: Path,
    cases: list[Case],
    traffic: Traffic,
    ids: Ids,
    total: int,
    chunk_rows: int,
    report: Callable[[str, int, int], None],
) -> tuple[int, dict[tuple[int, int], str]]:
    """``transactions.csv``: ``total`` rows, the cases' transactions among the background.

    The year is cut into day ranges of about ``chunk_rows`` rows; each range gets its share
    of background rows by day weight, plus the case transactions that fall in it (the last
    range also takes any case transaction after the year). Returns the rows written and
    the ``tx_id`` of every case transaction by ``(case index, transaction index)``.
    """
    case_tx = [(t[0], ci, k, t) for ci, c in enumerate(cases) for k, t in enumerate(c.txs)]
    case_tx.sort(key=lambda x: (x[0], x[1], x[2]))
    c_ts = np.asarray([x[0] for x in case_tx], dtype=np.int64)
    n_bg_tx = max(0, total - len(case_tx))
    n_chunks = max(1, math.ceil(total / chunk_rows))
    bounds = np.linspace(0, DAYS, n_chunks + 1).round().astype(int)
    day_w = traffic.day_w
    tot_w = day_w.sum()
    aid_s = pl.Series(ids.account)
    case_ids: dict[tuple[int, int], str] = {}
    tx_width = max(9, len(str(total * 2)))
    next_id = 1
    written = 0
    path = out_dir / "transactions.csv"
    with open(path, "wb") as fh:
        for k in range(n_chunks):
            d0, d1 = int(bounds[k]), int(bounds[k + 1])
            lo_n = round(n_bg_tx * day_w[:d0].sum() / tot_w)
            hi_n = round(n_bg_tx * day_w[:d1].sum() / tot_w)
            src, dst, ts, amt, typ = traffic.chunk(d0, d1, hi_n - lo_n)
            lo_ms, hi_ms = START_MS + d0 * DAY_MS, START_MS + d1 * DAY_MS
            if k == n_chunks - 1:
                hi_ms = max(hi_ms, int(c_ts.max()) + 1 if len(c_ts) else hi_ms)
            sel = np.flatnonzero((c_ts >= lo_ms) & (c_ts < hi_ms))
            cs = [case_tx[i] for i in sel]
            n_bg = len(ts)
            all_ts = np.concatenate([ts, np.asarray([x[0] for x in cs], dtype=np.int64)])
            all_src = np.concatenate([src, np.asarray([x[3][1] for x in cs], dtype=np.int64)])
            all_dst = np.concatenate([dst, np.asarray([x[3][2] for x in cs], dtype=np.int64)])
            all_amt = np.concatenate([amt, np.asarray([x[3][3] for x in cs], dtype=np.int64)])
            order = np.argsort(all_ts, kind="stable")
            n = len(order)
            seq = np.arange(next_id, next_id + n)
            pos = np.empty(n, dtype=np.int64)
            pos[order] = np.arange(n)
            for j, x in enumerate(cs):
                case_ids[(x[1], x[2])] = f"T{seq[pos[n_bg + j]]:0{tx_width}d}"
            chan = np.empty(n, dtype=object)
            memo = np.empty(n, dtype=object)
            chan[:n_bg] = np.asarray(CHANNEL, dtype=object)[typ]
            memo[:n_bg] = np.asarray(MEMO, dtype=object)[typ]
            for j, x in enumerate(cs):
                chan[n_bg + j] = x[3][4]
                memo[n_bg + j] = x[3][5]
            df = pl.DataFrame(
                {
                    "seq": seq,
                    "ts": all_ts[order],
                    "src_account": aid_s.gather(all_src[order]),
                    "dst_account": aid_s.gather(all_dst[order]),
                    "amount": all_amt[order],
                    "channel": pl.Series(chan[order], dtype=pl.Utf8),
                    "memo": pl.Series(memo[order], dtype=pl.Utf8),
                }
            ).with_columns(
                tx_id=pl.format("T{}", pl.col("seq").cast(pl.Utf8).str.zfill(tx_width)),
                currency=pl.lit("CNY"),
            )
            contract_frame("transactions", df).write_csv(fh, include_header=(k == 0))
            next_id += n
            written += n
            del df, src, dst, ts, amt, typ
            report("transactions", k + 1, n_chunks)
    return written, case_ids
