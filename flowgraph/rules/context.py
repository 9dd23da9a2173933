"""What every rule of a scoring run needs, loaded once from one store snapshot: the batch
:class:`Context`.

The index, the account lookup, the party graph and the disbursements (with borrower,
payment mode and whether the store holds their loan) are loaded up front; loans,
repayments and account categories on first use. Rule kinds (:mod:`flowgraph.rules.kinds`)
read their detector inputs from it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flowgraph.graph.hops import hop_records
from flowgraph.graph.party_links import PartyGraph, linked_targets, load_party_graph
from flowgraph.graph.store_index import AccountLookup, load_or_build_index
from flowgraph.rules.model import Rule, RulePack
from flowgraph.store.embedded import Store


@dataclass
class Context:
    """What every rule of a run needs, loaded once."""

    store: Store
    pack: RulePack
    index: object
    lookup: AccountLookup
    graph: PartyGraph
    disb: pl.DataFrame  # all disbursements with borrower_id, payment_mode, purpose, payee_account, loan_known
    tx: pl.DataFrame | None = None
    suppressed: Counter = field(default_factory=Counter)  # rule id → hits the suppression list silenced

    @classmethod
    def load(cls, store: Store, pack: RulePack, progress: Callable[[str], None] | None = None) -> Context:
        index, _ = load_or_build_index(store, progress=progress)
        loans = store.scan("loans")
        have = set(loans.collect_schema().names())
        # payee_account is an optional column a store written before it existed does not hold
        extra = [pl.col(c) if c in have else pl.lit(None, pl.Utf8).alias(c) for c in ("purpose", "payee_account")]
        disb = (
            store.scan("disbursements")
            .join(loans.select("loan_id", "borrower_id", "payment_mode", *extra, pl.lit(True).alias("loan_known")),
                  on="loan_id", how="left")
            .with_columns(pl.col("payment_mode").fill_null("self"), pl.col("loan_known").fill_null(False))
            .sort("ts", "disbursement_id")
            .collect()
        )  # fmt: skip
        return cls(store, pack, index, AccountLookup(index.account_ids), load_party_graph(store), disb)

    def benign(self, rule: Rule) -> np.ndarray | None:
        """uint8 flag per dense account: on the pack's suppression list for ``rule`` (by
        account, category or owning party); ``None`` when the list names nothing for it."""
        entries = [s for s in self.pack.suppress if s.applies_to(rule)]
        if not entries:
            return None
        key = tuple(entries)
        if key not in self._benign:
            flags = np.zeros(len(self.lookup.ids), np.uint8)
            accounts = self.store.read("accounts", ["account_id", "owner_id", "category"])
            by_account = {s.account for s in entries if s.account}
            by_category = {s.category for s in entries if s.category}
            by_party = {s.party for s in entries if s.party}
            hit = accounts.filter(pl.col("category").is_in(list(by_category))
                                  | pl.col("owner_id").is_in(list(by_party)))["account_id"].to_list()  # fmt: skip
            dense = self.lookup.many(sorted(by_account | set(hit)))
            flags[dense[dense >= 0]] = 1
            self._benign[key] = flags
        return self._benign[key]

    @functools.cached_property
    def _benign(self) -> dict:
        return {}

    def count_suppressed(self, rule: Rule, n: int) -> None:
        """Record ``n`` hits of ``rule`` silenced by the suppression list (0 records the rule)."""
        self.suppressed[rule.id] += n

    @functools.cached_property
    def loans(self) -> pl.DataFrame:
        return self.store.read("loans", ["loan_id", "borrower_id", "amount"])

    @functools.cached_property
    def loan_ids(self) -> list[str]:
        return self.loans["loan_id"].to_list()

    @functools.cached_property
    def repayments(self) -> pl.DataFrame:
        """Repayments with the row of their loan in :attr:`loans` (-1 when unknown)."""
        rows = pl.DataFrame({"loan_id": self.loan_ids, "loan_row": range(len(self.loan_ids))})
        return (
            self.store.read("repayments", ["loan_id", "account_id", "amount", "ts"])
            .join(rows, on="loan_id", how="left")
            .with_columns(pl.col("loan_row").fill_null(-1))
            .sort("ts", "account_id", "loan_id")
        )

    @functools.cached_property
    def industry_names(self) -> tuple[str, ...]:
        inds = self.store.read("parties", ["industry"])["industry"].drop_nulls().unique().sort()
        return tuple(inds.to_list())

    @functools.cached_property
    def account_industry(self) -> np.ndarray:
        """Industry code of each dense account's owner (index into :attr:`industry_names`, -1 none)."""
        codes = np.full(len(self.lookup.ids), -1, np.int16)
        code_of = {c: i for i, c in enumerate(self.industry_names)}
        acc = (self.store.read("accounts", ["account_id", "owner_id"])
               .join(self.store.read("parties", ["party_id", "industry"]), left_on="owner_id", right_on="party_id")
               .drop_nulls("industry"))  # fmt: skip
        dense = self.lookup.many(acc["account_id"].to_list())
        for d, c in zip(dense.tolist(), acc["industry"].to_list(), strict=True):
            if d >= 0:
                codes[d] = code_of[c]
        return codes

    @functools.cached_property
    def category_names(self) -> tuple[str, ...]:
        cats = self.store.read("accounts", ["category"])["category"].drop_nulls().unique().sort()
        return tuple(cats.to_list())

    @functools.cached_property
    def account_category(self) -> np.ndarray:
        """Category code per dense account (index into :attr:`category_names`, -1 none)."""
        codes = np.full(len(self.lookup.ids), -1, np.int16)
        acc = self.store.read("accounts", ["account_id", "category"]).drop_nulls()
        code_of = {c: i for i, c in enumerate(self.category_names)}
        dense = self.lookup.many(acc["account_id"].to_list())
        for d, c in zip(dense.tolist(), acc["category"].to_list(), strict=True):
            if d >= 0:
                codes[d] = code_of[c]
        return codes

    def hop_rows(self, rows: np.ndarray) -> dict[int, dict]:
        if self.tx is None:
            self.tx = self.store.read("transactions", ["tx_id", "src_account", "dst_account", "ts", "amount"])
        return hop_records(self.tx, rows)

    def borrower_targets(self, borrowers: list[str], depth: int, types, times) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """Borrower-linked accounts per disbursement, through the relations valid at each
        disbursement's time ``times`` (see :func:`flowgraph.graph.party_links.linked_targets`)."""
        return linked_targets(self.graph, self.lookup, borrowers, depth, types, times)
