"""The data contract: the eight input tables, declared once.

Every other module (validation, the store, ``flowgraph schema``, the generator, tests)
reads these declarations instead of repeating column lists.

Column kinds
------------
``str``     free text / identifiers (Utf8), kept as written (surrounding white space cut)
``money``   decimal with at most 2 places, stored as int64 minor units, never negative
``ts``      ISO-8601 (naive means UTC), ``YYYYMMDD`` or epoch milliseconds, stored as
            int64 UTC ms
``float``   finite float64 within the column's bounds (rates; never money)

:data:`VALUE_RULES` words the exact rules (:mod:`flowgraph.core.values`) for
``flowgraph schema``; :data:`EVENT_KEYS` says what makes an event unique.

>>> TABLES["transactions"].key
('tx_id',)
>>> [c.name for c in TABLES["transactions"].required_columns]
['tx_id', 'ts', 'src_account', 'dst_account', 'amount']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from flowgraph.core.errors import NotFound

RELATION_TYPES: tuple[str, ...] = (
    "spouse",
    "parent",
    "child",
    "relative",
    "legal_rep",
    "shareholder",
    "investor",
    "guarantor",
    "affiliate",
    "shared_phone",
    "shared_address",
    "other",
)
GRADES: tuple[str, ...] = ("normal", "special_mention", "substandard", "doubtful", "loss")
PARTY_KINDS: tuple[str, ...] = ("person", "company")
PAYMENT_MODES: tuple[str, ...] = ("self", "entrusted")

KIND_DTYPES: dict[str, pl.DataType] = {
    "str": pl.Utf8(),
    "money": pl.Int64(),
    "ts": pl.Int64(),
    "float": pl.Float64(),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "str"
    required: bool = False
    allowed: tuple[str, ...] | None = None
    doc: str = ""
    bounds: tuple[float, float] | None = None  # float columns: the accepted [lo, hi]

    @property
    def dtype(self) -> pl.DataType:
        return KIND_DTYPES[self.kind]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    doc: str = ""
    # a column that is derived from other columns when the input lacks it
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[Column]:
        return [c for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema)


def _c(name: str, kind: str = "str", required: bool = False, allowed=None, doc: str = "", bounds=None) -> Column:
    return Column(name, kind, required, tuple(allowed) if allowed else None, doc, bounds)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "transactions",
            (
                _c("tx_id", required=True, doc="unique transaction id"),
                _c("ts", "ts", True, doc="booking time, UTC ms"),
                _c("src_account", required=True),
                _c("dst_account", required=True),
                _c("amount", "money", True),
                _c("currency"),
                _c("channel", doc="transfer, withdraw, ..."),
                _c("memo"),
            ),
            key=("tx_id",),
            doc="money moving between two accounts",
        ),
        Table(
            "accounts",
            (
                _c("account_id", required=True),
                _c("owner_id", required=True, doc="party_id of the owner"),
                _c("opened_at", "ts"),
                _c("kind"),
                _c("category", doc="brokerage, real_estate, lender, crypto, ..."),
                _c("branch"),
                _c("status"),
            ),
            key=("account_id",),
        ),
        Table(
            "parties",
            (
                _c("party_id", required=True),
                _c("kind", required=True, allowed=PARTY_KINDS),
                _c("name"),
                _c("id_number"),
                _c("phone"),
                _c("address"),
                _c("industry"),
                _c("region"),
            ),
            key=("party_id",),
        ),
        Table(
            "relations",
            (
                _c("party_a", required=True),
                _c("party_b", required=True),
                _c("relation", required=True, allowed=RELATION_TYPES),
                _c("since", "ts"),
            ),
            key=("party_a", "party_b", "relation"),
        ),
        Table(
            "loans",
            (
                _c("loan_id", required=True),
                _c("borrower_id", required=True),
                _c("amount", "money", True),
                _c("product"),
                _c("purpose"),
                _c("branch"),
                _c("industry"),
                _c("region"),
                _c("payment_mode", allowed=PAYMENT_MODES),
                _c("maturity_date", "ts"),
                _c("rate", "float", doc="yearly rate as a fraction in [0, 1] (0.0446 = 4.46%)", bounds=(0.0, 1.0)),
                _c("payee_account", doc="the declared payee of the proceeds (entrusted payment: the supplier's account)"),
            ),
            key=("loan_id",),
        ),
        Table(
            "disbursements",
            (
                _c("disbursement_id", doc="derived when absent: loan_id:account_id:ts:amount, then #2, #3, ..."
                   " for further identical rows of one file"),
                _c("loan_id", required=True),
                _c("account_id", required=True),
                _c("amount", "money", True),
                _c("ts", "ts", True),
            ),
            key=("disbursement_id",),
            derived={"disbursement_id": ("loan_id", "account_id", "ts", "amount")},
        ),
        Table(
            "repayments",
            (
                _c("repayment_id", doc="derived when absent: loan_id:account_id:ts:amount, then #2, #3, ..."
                   " for further identical rows of one file"),
                _c("loan_id", required=True),
                _c("account_id", required=True),
                _c("amount", "money", True),
                _c("ts", "ts", True),
            ),
            key=("repayment_id",),
            derived={"repayment_id": ("loan_id", "account_id", "ts", "amount")},
        ),
        Table(
            "classifications",
            (
                _c("loan_id", required=True),
                _c("as_of", "ts", True),
                _c("grade", required=True, allowed=GRADES),
                _c("source", doc="manual or auto"),
                _c("reason"),
            ),
            key=("loan_id", "as_of"),
        ),
    )
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

#: How each column kind is read: exactly what the text says, or the row is quarantined
#: with the column and the rule broken (the rules live in :mod:`flowgraph.core.values`).
VALUE_RULES: dict[str, str] = {
    "all": "Text is NFKC-normalised before numbers and times are read, so full-width digits"
    " (１２３．４５) read as ASCII ones; other non-ASCII digits are refused. Surrounding white"
    " space is cut. An empty optional value is absent (null); an empty required one is refused.",
    "str": "Kept as written (only surrounding white space is cut); values of a column with an"
    " allowed set are lower-cased and must be in the set.",
    "money": "A decimal [0-9]+(.[0-9]+)?, not negative, at most 16 digits before the point"
    " (9999999999999999.99 at most); places after the second must be 0 (1.500 = 1.50, 1.505 is"
    " refused). No sign, exponent, digit grouping, NaN or inf. Parquet: integers are whole"
    " units, decimals of any scale load when they fit two places exactly, floating-point"
    " columns are refused (a float is not an exact decimal).",
    "ts": "UTC ms within 1900-01-01 … 2199-12-31. ISO-8601 YYYY-MM-DD or YYYY-MM-DD[T ]HH:MM[:SS[.f]]"
    " (naive = UTC; Z or an offset ±HH:MM / ±HHMM of at most 14:00; digits after the millisecond"
    " are cut); compact YYYYMMDD = that day 00:00 UTC; epoch milliseconds written with 11-13"
    " digits. Other digit strings are refused, never read in another unit (9-10 digits look like"
    " epoch seconds). Parquet: dates and timestamps are read by type; a time-zone-aware timestamp"
    " is converted to UTC, a naive one is UTC.",
    "float": "A finite plain decimal (exponent allowed) within the column's bounds; nan, inf and"
    " values outside the bounds are refused.",
}

@dataclass(frozen=True)
class Reference:
    """A column (or pair) that names a row of another table, checked after each ingest.

    Every reference is a *warning*, never a rejection: tables may arrive in any order
    over several ingests, and a rejection would make the outcome depend on that order.
    """

    table: str
    columns: tuple[str, ...]
    target: str
    target_column: str
    all_unknown: bool = False  # warn only when every one of ``columns`` is unknown
    doc: str = ""

    @property
    def name(self) -> str:
        return f"{self.table}.{'/'.join(self.columns)}"


REFERENCES: tuple[Reference, ...] = (
    Reference("transactions", ("src_account", "dst_account"), "accounts", "account_id", True,
              "a transfer between two accounts the accounts table does not hold (one unknown side is"
              " normal: a counterparty at another bank)"),
    Reference("accounts", ("owner_id",), "parties", "party_id", doc="an account of an unknown owner"),
    Reference("loans", ("borrower_id",), "parties", "party_id", doc="a loan for an unknown borrower"),
    Reference("disbursements", ("loan_id",), "loans", "loan_id", doc="a disbursement of an unknown loan"),
    Reference("disbursements", ("account_id",), "accounts", "account_id",
              doc="a disbursement to an account the accounts table does not hold"),
    Reference("repayments", ("loan_id",), "loans", "loan_id", doc="a repayment of an unknown loan"),
    Reference("relations", ("party_a", "party_b"), "parties", "party_id", doc="a relation naming an unknown party"),
    Reference("classifications", ("loan_id",), "loans", "loan_id", doc="a grade of an unknown loan"),
)

#: Other checks after each ingest, warnings too (name → what it finds and why it is not
#: refused): the rows stay, every command copes with them, the ingest report counts them.
CHECKS: dict[str, tuple[str, str]] = {
    "transactions.self_transfer": (
        "transactions",
        "src_account = dst_account: it moves no money, so it is in no flow-back path or cycle;"
        " kept because source systems do book them (FinBench SF0.01 has two)",
    ),
    "relations.self_relation": (
        "relations",
        "party_a = party_b: ignored by the party graph (a party is always on its own side);"
        " kept because registers hold them (a company investing in itself)",
    ),
    "disbursements.over_loan_amount": (
        "disbursements",
        "the disbursements of a loan add up to more than the loan's amount",
    ),
}

#: What makes a row of each table one thing: the key. Events without an id of their own
#: (disbursements, repayments) get one derived from their whole content
#: (loan_id:account_id:ts:amount), numbered #2, #3, ... for further identical rows of one
#: file: two real repayments of 100.00 in the same millisecond are both kept; re-ingesting
#: the same file (or a re-ordered copy) changes nothing; a row added later never renumbers
#: the others; the same row in two files is one event. Without an id a changed amount is
#: another event — give explicit ids to make a correction a conflict instead.
EVENT_KEYS: dict[str, str] = {
    name: " + ".join(t.key)
    + (" (derived when absent: " + ", ".join(f"{k} = {':'.join(v)}[#n]" for k, v in t.derived.items()) + ")" if t.derived else "")
    for name, t in TABLES.items()
}


def describe(table: str | None = None) -> list[dict]:
    """Plain-data description of the contract, for ``flowgraph schema``."""
    names = [table] if table else list(TABLES)
    out = []
    for name in names:
        if name not in TABLES:
            raise NotFound(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        t = TABLES[name]
        out.append(
            {
                "table": t.name,
                "key": list(t.key),
                "columns": [
                    {
                        "name": c.name,
                        "kind": c.kind,
                        "dtype": str(c.dtype),
                        "required": c.required,
                        "allowed": list(c.allowed) if c.allowed else None,
                        "bounds": list(c.bounds) if c.bounds else None,
                        "doc": c.doc,
                    }
                    for c in t.columns
                ],
                "unique": EVENT_KEYS[name],
                "checks": [{"check": k, "policy": "warn", "doc": doc} for k, (t_, doc) in CHECKS.items() if t_ == name],
                "references": [
                    {"columns": list(r.columns), "target": f"{r.target}.{r.target_column}",
                     "when": "all unknown" if r.all_unknown else "any unknown", "policy": "warn", "doc": r.doc}
                    for r in REFERENCES if r.table == name
                ],
            }
        )
    return out
