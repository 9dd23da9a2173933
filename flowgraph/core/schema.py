"""The data contract: the eight input tables, declared once.

Every other module (validation, the store, ``flowgraph schema``, the generator, tests)
reads these declarations instead of repeating column lists.

Column kinds
------------
``str``     free text / identifiers (Utf8)
``money``   decimal with at most 2 places, stored as int64 minor units, never negative
``ts``      ISO-8601 (naive means UTC) or epoch milliseconds, stored as int64 UTC ms
``float``   plain float64 (rates, ratios; never money)

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


def _c(name: str, kind: str = "str", required: bool = False, allowed=None, doc: str = "") -> Column:
    return Column(name, kind, required, tuple(allowed) if allowed else None, doc)


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
                _c("rate", "float"),
            ),
            key=("loan_id",),
        ),
        Table(
            "disbursements",
            (
                _c("disbursement_id", doc="derived as loan_id:account_id:ts when absent"),
                _c("loan_id", required=True),
                _c("account_id", required=True),
                _c("amount", "money", True),
                _c("ts", "ts", True),
            ),
            key=("disbursement_id",),
            derived={"disbursement_id": ("loan_id", "account_id", "ts")},
        ),
        Table(
            "repayments",
            (
                _c("loan_id", required=True),
                _c("account_id", required=True),
                _c("amount", "money", True),
                _c("ts", "ts", True),
            ),
            key=("loan_id", "ts", "account_id"),
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
                        "doc": c.doc,
                    }
                    for c in t.columns
                ],
            }
        )
    return out
