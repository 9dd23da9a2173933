"""The labelled synthetic-data generator: contract, determinism, and the labels' truth.

The flow-back paths here come from this file's own brute-force search over the written CSV
files of the whole bank (the generator checks each case alone with the engine's reference),
so a label is only trusted if the data really contains what the label claims. The
returned amount uses the one greedy walk, ``flow_back_reference.greedy_returned``.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from flowgraph.core.schema import RELATION_TYPES, TABLES
from flowgraph.core.values import DAY_MS, HOUR_MS, parse_amount, parse_ts, ratio_threshold
from flowgraph.engine.flow_back_reference import greedy_returned
from flowgraph.synthetic.generate import (
    BACKGROUND_MAX,
    MIN_DISBURSEMENT,
    SCALES,
    TYPOLOGIES,
    generate,
)

WINDOW = 30 * DAY_MS
MAX_HOPS = 5
RATIO = 0.1
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
AMOUNT_RE = re.compile(r"^\d+\.\d{2}$")
FILES = [f"{t}.csv" for t in TABLES] + ["labels.parquet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny0")
    calls = []
    counts = generate(out, "tiny", seed=0, progress=lambda *a: calls.append(a))
    assert calls and calls[-1][0] == "labels"
    return out, counts


@pytest.fixture(scope="module")
def data(tiny) -> dict:
    """The tiny dataset parsed into int64 amounts / ts, plus the labels."""
    out, _ = tiny
    d = {}
    for t, spec in TABLES.items():
        df = pl.read_csv(out / f"{t}.csv", infer_schema=False)
        conv = []
        for c in spec.columns:
            if c.kind == "money":
                conv.append(pl.col(c.name).map_elements(parse_amount, return_dtype=pl.Int64))
            elif c.kind == "ts":
                conv.append(pl.col(c.name).map_elements(parse_ts, return_dtype=pl.Int64))
        d[t] = df.with_columns(conv) if conv else df
    d["labels"] = pl.read_parquet(out / "labels.parquet")
    return d


# ------------------------------------------------------------------ independent reference


class Bank:
    def __init__(self, data: dict):
        self.owner = dict(
            zip(data["accounts"]["account_id"], data["accounts"]["owner_id"], strict=True)
        )
        self.category = dict(
            zip(data["accounts"]["account_id"], data["accounts"]["category"], strict=True)
        )
        self.accounts_of: dict[str, set[str]] = {}
        for a, o in self.owner.items():
            self.accounts_of.setdefault(o, set()).add(a)
        self.nbr: dict[str, set[str]] = {}
        for a, b in zip(data["relations"]["party_a"], data["relations"]["party_b"], strict=True):
            self.nbr.setdefault(a, set()).add(b)
            self.nbr.setdefault(b, set()).add(a)
        p = data["parties"]
        for col in ("phone", "address"):
            groups = (
                p.filter(pl.col(col).is_not_null())
                .group_by(col)
                .agg(pl.col("party_id"))
                .filter(pl.col("party_id").list.len() > 1)
            )
            for members in groups["party_id"]:
                for x in members:
                    self.nbr.setdefault(x, set()).update(m for m in members if m != x)
        self.name = dict(zip(p["party_id"], p["name"], strict=True))
        self.borrower = dict(
            zip(data["loans"]["loan_id"], data["loans"]["borrower_id"], strict=True)
        )
        disb = data["disbursements"]
        self.disb = {r["disbursement_id"]: r for r in disb.iter_rows(named=True)}
        tx = data["transactions"]
        self.tx = {r["tx_id"]: r for r in tx.iter_rows(named=True)}
        # every hop of any path is ≥ 10% of some disbursement ≥ MIN_DISBURSEMENT
        big = tx.filter(pl.col("amount") >= ratio_threshold(RATIO, int(disb["amount"].min())))
        self.out: dict[str, list[dict]] = {}
        for r in big.sort(["ts", "tx_id"]).iter_rows(named=True):
            self.out.setdefault(r["src_account"], []).append(r)

    def linked_parties(self, loan_id: str) -> set[str]:
        b = self.borrower[loan_id]
        return {b} | self.nbr.get(b, set())

    def linked_accounts(self, loan_id: str) -> set[str]:
        return {a for p in self.linked_parties(loan_id) for a in self.accounts_of.get(p, ())}

    def paths(self, disbursement_id: str) -> list[list[dict]]:
        """All flow-back paths of one disbursement (DESIGN.md conditions 1–8), brute force."""
        ds = self.disb[disbursement_id]
        d, t0, a = ds["account_id"], ds["ts"], ds["amount"]
        T = self.linked_accounts(ds["loan_id"])
        thr = ratio_threshold(RATIO, a)
        found = []

        def ok_path(path: list[dict]) -> bool:
            accts = [d] + [e["dst_account"] for e in path]
            ts = [e["ts"] for e in path]
            if not all(t0 < x <= t0 + WINDOW for x in ts) or any(
                y <= x for x, y in zip(ts, ts[1:], strict=False)
            ):
                return False
            if any(e["amount"] < thr for e in path) or not 1 <= len(path) <= MAX_HOPS:
                return False
            body = accts[:-1]
            if len(set(body)) != len(body) or (accts[-1] in body and accts[-1] != d):
                return False
            if accts[-1] not in T or all(x in T for x in body):
                return False
            first_out = next(i for i, x in enumerate(body) if x not in T)
            return all(x not in T for x in body[first_out:])

        def extend(path: list[dict]) -> None:
            u = path[-1]["dst_account"] if path else d
            if path and ok_path(path):
                found.append(list(path))
            if len(path) == MAX_HOPS:
                return
            for e in self.out.get(u, ()):
                if path and e["ts"] <= path[-1]["ts"]:
                    continue
                if e["ts"] <= t0 or e["ts"] > t0 + WINDOW or e["amount"] < thr:
                    continue
                extend([*path, e])

        extend([])
        return found

    def greedy(self, disbursement_id: str, paths: list[list[dict]]) -> int:
        """Greedy returned amount over the union of ``paths`` (the engine's one reference walk)."""
        ds = self.disb[disbursement_id]
        edges = sorted(
            {e["tx_id"]: e for p in paths for e in p}.values(), key=lambda e: (e["ts"], e["tx_id"])
        )
        col = {k: [e[k] for e in edges] for k in ("src_account", "dst_account", "ts", "amount")}
        return greedy_returned(range(len(edges)), col["src_account"], col["dst_account"],
                               col["ts"], col["amount"], ds["account_id"], ds["amount"],
                               self.linked_accounts(ds["loan_id"]))  # fmt: skip


@pytest.fixture(scope="module")
def bank(data) -> Bank:
    return Bank(data)


# ------------------------------------------------------------------------------ contract


def test_files_and_columns(tiny):
    out, counts = tiny
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for t, spec in TABLES.items():
        text = (out / f"{t}.csv").read_text(encoding="utf-8")
        header = text.split("\n", 1)[0]
        # a derived id (repayment_id) may be left out: ingest derives it
        assert header.split(",") == [c for c in spec.column_names if c in header.split(",") or c not in spec.derived], t
        df = pl.read_csv(out / f"{t}.csv", infer_schema=False)
        assert df.height == counts["tables"][t]
        for c in (c for c in spec.columns if c.name in df.columns):
            col = df[c.name].drop_nulls()
            if c.required:
                assert df[c.name].null_count() == 0, (t, c.name)
            if c.kind == "money":
                assert col.str.contains(AMOUNT_RE.pattern).all(), (t, c.name)
            elif c.kind == "ts":
                assert col.str.contains(TS_RE.pattern).all(), (t, c.name)
            elif c.kind == "float":
                col.cast(pl.Float64)
            if c.allowed:
                assert set(col.unique()) <= set(c.allowed), (t, c.name)


def test_values_parse(data):
    tx = data["transactions"]
    assert (tx["amount"] > 0).all()
    assert tx["ts"].min() >= parse_ts("2024-01-01") and tx["ts"].max() < parse_ts("2025-01-01")
    assert set(tx["currency"].unique()) == {"CNY"}
    assert {"transfer", "card", "withdraw"} <= set(tx["channel"].unique())
    explicit = set(RELATION_TYPES) - {"shared_phone", "shared_address"}
    assert set(data["relations"]["relation"].unique()) == explicit  # shared_* are derived
    cats = set(data["accounts"]["category"].drop_nulls().unique())
    assert cats == {"brokerage", "real_estate", "lender", "crypto"}
    assert set(data["loans"]["payment_mode"].unique()) == {"self", "entrusted"}
    assert set(data["classifications"]["source"].unique()) == {"manual"}
    assert data["classifications"]["grade"].n_unique() >= 2


def test_keys_unique_and_references(data):
    for t, spec in TABLES.items():
        df = data[t]
        key = [k for k in spec.key if k in df.columns] or list(spec.derived[spec.key[0]])
        assert df.select(key).is_duplicated().sum() == 0, t
    accounts = set(data["accounts"]["account_id"])
    parties = set(data["parties"]["party_id"])
    loans = set(data["loans"]["loan_id"])
    tx = data["transactions"]
    assert set(tx["src_account"]) <= accounts and set(tx["dst_account"]) <= accounts
    assert (tx["src_account"] != tx["dst_account"]).all()
    assert set(data["accounts"]["owner_id"]) <= parties
    assert set(data["loans"]["borrower_id"]) <= parties
    assert set(data["relations"]["party_a"]) | set(data["relations"]["party_b"]) <= parties
    for t in ("disbursements", "repayments", "classifications"):
        assert set(data[t]["loan_id"]) <= loans, t
    for t in ("disbursements", "repayments"):
        assert set(data[t]["account_id"]) <= accounts, t
    d = data["disbursements"]
    derived = d.select(pl.format("{}:{}:{}", "loan_id", "account_id", pl.col("ts")))
    assert derived.to_series().to_list() == d["disbursement_id"].to_list()
    # tx ids: zero padded, file order == id order == time order
    ids = tx["tx_id"].to_list()
    assert ids == sorted(ids) and len({len(x) for x in ids}) == 1
    assert tx["ts"].is_sorted()


def test_entrusted_and_tranches(data, bank):
    loans = data["loans"]
    disb = data["disbursements"]
    assert disb.group_by("loan_id").len()["len"].max() >= 2  # some loans come in tranches
    assert set(disb["loan_id"]) == set(loans["loan_id"])
    for r in disb.join(
        loans.select("loan_id", "borrower_id", "payment_mode"), on="loan_id"
    ).iter_rows(named=True):
        own = bank.owner[r["account_id"]] == r["borrower_id"]
        assert own == (r["payment_mode"] == "self"), r


def test_sums_of_tranches(data):
    s = data["disbursements"].group_by("loan_id").agg(pl.col("amount").sum().alias("s"))
    j = data["loans"].join(s, on="loan_id")
    assert (j["amount"] == j["s"]).all()
    assert data["disbursements"]["amount"].min() >= MIN_DISBURSEMENT


def test_people_share_phone_and_address(data):
    p = data["parties"]
    assert set(p["kind"].unique()) == {"person", "company"}
    assert p["phone"].is_duplicated().any() and p["address"].is_duplicated().any()
    assert (data["accounts"].group_by("owner_id").len()["len"] > 1).any()


# ---------------------------------------------------------------------------- determinism


def _read_all(out: Path) -> dict[str, bytes]:
    return {f: (out / f).read_bytes() for f in FILES}


def test_deterministic(tiny, tmp_path):
    out, counts = tiny
    again = generate(tmp_path / "again", "tiny", seed=0)
    assert again == counts
    assert _read_all(tmp_path / "again") == _read_all(out)
    other = generate(tmp_path / "other", "tiny", seed=1)
    assert other["typologies"] == counts["typologies"]
    b1 = _read_all(tmp_path / "other")
    assert b1["transactions.csv"] != _read_all(out)["transactions.csv"]
    assert b1["labels.parquet"] != _read_all(out)["labels.parquet"]


def test_bad_scale(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        generate(tmp_path, "huge")


# --------------------------------------------------------------------------------- sizes


def test_tiny_counts(tiny):
    _, counts = tiny
    sc = SCALES["tiny"]
    assert counts["tables"]["transactions"] == sc.transactions
    assert 0.7 * sc.accounts <= counts["tables"]["accounts"] <= 1.3 * sc.accounts
    assert set(counts["typologies"]) == set(TYPOLOGIES)
    assert all(n >= 3 for n in counts["typologies"].values())
    # one label row per case loan: a split-disbursement case (and its look-alike) has three loans
    assert counts["labels"] == sum(counts["typologies"].values()) + 2 * (counts["typologies"]["split_disbursement"]
                                                                        + counts["typologies"]["neg_split_unrelated"])
    assert counts["tables"]["relations"] > 0 and counts["tables"]["repayments"] > 0


def test_tiny_is_small_enough_for_the_sample(tiny):
    out, _ = tiny
    assert sum((out / f).stat().st_size for f in FILES) < 5_000_000


def test_background_has_rhythm_and_heavy_tail(data, bank):
    labelled = {x for xs in data["labels"]["tx_ids"] for x in xs}
    bg = data["transactions"].filter(~pl.col("tx_id").is_in(list(labelled)))
    deg = bg.group_by("dst_account").len()["len"]
    assert deg.max() > 10 * deg.median()
    dt = bg.select(pl.from_epoch("ts", time_unit="ms").alias("t"))
    by_dow = dt.group_by(pl.col("t").dt.weekday()).len().sort("t")["len"].to_list()
    assert min(by_dow[:5]) > max(by_dow[5:])  # weekdays busier than weekends
    by_hour = dt.group_by(pl.col("t").dt.hour()).len()["len"]
    assert by_hour.max() > 3 * by_hour.min()


# --------------------------------------------------------------------------------- labels


def test_labels_schema(data):
    lab = data["labels"]
    assert lab.columns == [
        "case_id",
        "typology",
        "loan_id",
        "disbursement_id",
        "tx_ids",
        "expected_rule",
        "lookalike_of",
        "also_rules",
        "hops",
        "returned_amount",
        "note",
    ]
    assert lab.schema["tx_ids"] == pl.List(pl.Utf8)
    assert lab.schema["hops"] == pl.Int64 and lab.schema["returned_amount"] == pl.Int64
    assert lab["case_id"].is_unique().all() and lab["loan_id"].is_unique().all()
    neg = lab.filter(pl.col("typology").str.starts_with("neg_"))
    assert neg["expected_rule"].null_count() == neg.height
    fb = lab.filter(pl.col("expected_rule") == "flow_back")
    assert fb["returned_amount"].null_count() == 0 and fb["hops"].null_count() == 0
    assert (
        lab.filter(pl.col("expected_rule").fill_null("") != "flow_back")[
            "returned_amount"
        ].null_count()
        == lab.height - fb.height
    )


NO_TX = {"split_disbursement", "neg_split_unrelated", "neg_routine_instalment"}


def test_label_transactions_exist(data, bank):
    lab = data["labels"]
    disb = set(data["disbursements"]["disbursement_id"])
    for r in lab.iter_rows(named=True):
        # cases made of loans and repayments only have no transactions
        assert r["tx_ids"] or r["typology"] in NO_TX, r["case_id"]
        assert all(x in bank.tx for x in r["tx_ids"]), r["case_id"]
        assert r["disbursement_id"] in disb
        assert bank.disb[r["disbursement_id"]]["loan_id"] == r["loan_id"]
        # each case loan is a single tranche
        assert data["disbursements"].filter(pl.col("loan_id") == r["loan_id"]).height == 1
    all_ids = [x for xs in lab["tx_ids"] for x in xs]
    assert len(all_ids) == len(set(all_ids))


def test_flow_back_cases_hold(data, bank):
    lab = data["labels"].filter(pl.col("expected_rule") == "flow_back")
    assert set(lab["typology"]) == {
        "fb_direct",
        "fb_split_merge",
        "fb_entrusted",
        "fb_related",
        "fb_partial",
    }
    for r in lab.iter_rows(named=True):
        ds = bank.disb[r["disbursement_id"]]
        t0, a, d = ds["ts"], ds["amount"], ds["account_id"]
        T = bank.linked_accounts(r["loan_id"])
        paths = bank.paths(r["disbursement_id"])
        assert paths, r["case_id"]
        assert r["hops"] in {len(p) for p in paths}, r["case_id"]
        used = {e["tx_id"] for p in paths for e in p}
        assert used <= set(r["tx_ids"]), r["case_id"]
        for p in paths:  # conditions spelled out along the chain
            ts = [e["ts"] for e in p]
            assert t0 < ts[0] and ts[-1] <= t0 + WINDOW and ts == sorted(set(ts))
            assert p[0]["src_account"] == d
            assert all(x["dst_account"] == y["src_account"] for x, y in zip(p, p[1:], strict=False))
            assert all(e["amount"] >= ratio_threshold(RATIO, a) for e in p)
            assert p[-1]["dst_account"] in T
            assert bank.owner[p[-1]["dst_account"]] in bank.linked_parties(r["loan_id"])
        assert bank.greedy(r["disbursement_id"], paths) == r["returned_amount"], r["case_id"]
        assert 0 < r["returned_amount"] <= a
        if r["typology"] == "fb_partial":
            assert r["returned_amount"] < 0.9 * a
        if r["typology"] == "fb_entrusted":
            assert bank.owner[d] != bank.borrower[r["loan_id"]]
        if r["typology"] == "fb_related":
            ends = {bank.owner[p[-1]["dst_account"]] for p in paths}
            assert bank.borrower[r["loan_id"]] not in ends


def test_only_flow_back_cases_have_flow_back_paths(data, bank):
    """Background, ordinary loans, other typologies and negative controls: no path at all."""
    fb = set(data["labels"].filter(pl.col("expected_rule") == "flow_back")["disbursement_id"])
    with_paths = {did for did in bank.disb if bank.paths(did)}
    assert with_paths == fb


def test_background_invariant(data, bank):
    labelled = {x for xs in data["labels"]["tx_ids"] for x in xs}
    tx = data["transactions"]
    bg = tx.filter(~pl.col("tx_id").is_in(list(labelled)))
    min_disb = int(data["disbursements"]["amount"].min())
    # the only large background transfers are the ordinary loans' spending: from the
    # account a company's loan was paid into, to suppliers that repay no loan and never
    # send a large amount on (so no path can run through them)
    large = bg.filter(pl.col("amount") > BACKGROUND_MAX)
    case_loans = set(data["labels"]["loan_id"])
    ordinary_d = set(data["disbursements"].filter(~pl.col("loan_id").is_in(list(case_loans)))["account_id"])
    assert set(large["src_account"]) <= ordinary_d
    sinks = set(large["dst_account"])
    assert not sinks & set(data["repayments"]["account_id"])
    assert bg.filter(pl.col("src_account").is_in(list(sinks)))["amount"].max() <= BACKGROUND_MAX
    assert BACKGROUND_MAX < ratio_threshold(RATIO, min_disb)
    assert BACKGROUND_MAX * 4 <= ratio_threshold(RATIO, MIN_DISBURSEMENT)
    # no repayment is made from an account within a window after a disbursement into it
    # (that would be a 0-hop repay-with-loan), and the only repayments from a third party's
    # account are those of the repay_with_loan cases
    disb = data["disbursements"].select("account_id", pl.col("ts").alias("t0"))
    # (but for the look-alike built on it: an older loan's routine instalments)
    routine = data["labels"].filter(pl.col("typology") == "neg_routine_instalment")["disbursement_id"]
    disb = disb.filter(~pl.col("account_id").is_in(
        data["disbursements"].filter(pl.col("disbursement_id").is_in(routine.implode()))["account_id"].implode()))
    rep = data["repayments"]
    zero_hop = rep.join(disb, on="account_id").filter(
        (pl.col("ts") > pl.col("t0")) & (pl.col("ts") <= pl.col("t0") + WINDOW)
    )
    assert zero_hop.height == 0
    third = [
        r
        for r in rep.iter_rows(named=True)
        if bank.owner[r["account_id"]] != bank.borrower[r["loan_id"]]
    ]
    rwl = data["labels"].filter(pl.col("typology") == "repay_with_loan")
    assert len(third) == rwl.height


def _case_rows(data, typ):
    rows = list(data["labels"].filter(pl.col("typology") == typ).iter_rows(named=True))
    assert len(rows) >= 3, typ
    return rows


def _txs(bank, r):
    return sorted((bank.tx[x] for x in r["tx_ids"]), key=lambda e: (e["ts"], e["tx_id"]))


def test_neg_late_return(data, bank):
    for r in _case_rows(data, "neg_late_return"):
        ds = bank.disb[r["disbursement_id"]]
        txs = _txs(bank, r)
        assert txs[-1]["dst_account"] in bank.linked_accounts(r["loan_id"])
        assert 35 * DAY_MS <= txs[-1]["ts"] - ds["ts"] <= 60 * DAY_MS
        assert all(e["amount"] >= ratio_threshold(RATIO, ds["amount"]) for e in txs)
        assert not bank.paths(r["disbursement_id"])


def test_neg_unlinked_lookalike(data, bank):
    for r in _case_rows(data, "neg_unlinked_lookalike"):
        txs = _txs(bank, r)
        end_owner = bank.owner[txs[-1]["dst_account"]]
        b = bank.borrower[r["loan_id"]]
        assert end_owner not in bank.linked_parties(r["loan_id"])
        n1, n2 = bank.name[b], bank.name[end_owner]
        assert n1 != n2
        assert n1[:2] == n2[:2] or n1[:-4] in n2  # a look-alike name
        assert txs[-1]["ts"] <= bank.disb[r["disbursement_id"]]["ts"] + WINDOW
        assert not bank.paths(r["disbursement_id"])


def test_neg_own_accounts_and_round_amounts(data, bank):
    for typ in ("neg_own_accounts", "neg_round_amount"):
        for r in _case_rows(data, typ):
            b = bank.borrower[r["loan_id"]]
            ds = bank.disb[r["disbursement_id"]]
            txs = _txs(bank, r)
            for e in txs:
                assert bank.owner[e["src_account"]] == b and bank.owner[e["dst_account"]] == b
                assert e["amount"] >= ratio_threshold(RATIO, ds["amount"])
                assert ds["ts"] < e["ts"] <= ds["ts"] + WINDOW
                if typ == "neg_round_amount":
                    assert e["amount"] % 50_000_000 == 0
            assert not bank.paths(r["disbursement_id"])


def test_repay_with_loan(data, bank):
    rep = data["repayments"]
    for r in _case_rows(data, "repay_with_loan"):
        ds = bank.disb[r["disbursement_id"]]
        txs = _txs(bank, r)
        assert txs[0]["src_account"] == ds["account_id"]
        end = txs[-1]["dst_account"]
        assert bank.owner[end] not in bank.linked_parties(r["loan_id"])
        hits = rep.filter(
            (pl.col("account_id") == end)
            & (pl.col("ts") > txs[-1]["ts"])
            & (pl.col("ts") <= ds["ts"] + WINDOW)
        )
        assert hits.height == 1
        assert bank.borrower[hits["loan_id"][0]] == bank.borrower[r["loan_id"]]
        assert len(txs) == r["hops"]


def test_prohibited_destination(data, bank):
    for r in _case_rows(data, "prohibited_destination"):
        txs = _txs(bank, r)
        assert bank.category[txs[-1]["dst_account"]] in {
            "brokerage",
            "real_estate",
            "lender",
            "crypto",
        }
        assert txs[-1]["ts"] <= bank.disb[r["disbursement_id"]]["ts"] + WINDOW
        assert len(txs) == r["hops"]


def test_rapid_pass_through(data, bank):
    for r in _case_rows(data, "rapid_pass_through"):
        txs = _txs(bank, r)
        m = txs[0]["dst_account"]
        received = txs[0]["amount"]
        fwd = [e for e in txs[1:] if e["src_account"] == m]
        assert fwd and sum(e["amount"] for e in fwd) >= 0.9 * received
        assert all(0 < e["ts"] - txs[0]["ts"] <= 6 * HOUR_MS for e in fwd)


def test_transfer_cycle(data, bank):
    for r in _case_rows(data, "transfer_cycle"):
        txs = _txs(bank, r)
        cyc = txs[1:]
        assert len(cyc) == r["hops"] and 3 <= len(cyc) <= 6
        assert cyc[0]["src_account"] == txs[0]["dst_account"] == cyc[-1]["dst_account"]
        assert all(x["dst_account"] == y["src_account"] for x, y in zip(cyc, cyc[1:], strict=False))
        assert len({e["src_account"] for e in cyc}) == len(cyc)
        T = bank.linked_accounts(r["loan_id"])
        assert not any(e["src_account"] in T for e in cyc)
        ts = [e["ts"] for e in cyc]
        assert ts == sorted(set(ts))
        assert all(
            0.2 <= y["amount"] / x["amount"] <= 3
            for x, y in zip(cyc, cyc[1:] + cyc[:1], strict=True)
        )
