"""Generated banks are internally consistent: every rule below holds on banks of two seeds.

Each rule is a function of the bank's tables that returns the offending rows (an empty
frame when the rule holds), so a failure names the rows. The rules are read straight from
the files, without the generator's internals; the last tests break a clean bank on purpose
to show that each rule catches what it is meant to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from flowgraph.core.schema import TABLES
from flowgraph.core.values import DAY_MS
from flowgraph.rules.classification import ClassificationParams
from flowgraph.rules.repayment import repayment_status
from flowgraph.synthetic.constants import END_MS, QUARTER_ENDS, START_MS
from flowgraph.synthetic.generate import generate
from flowgraph.synthetic.vocabulary import DISTRICTS, REGIONS, ROADS

SEEDS = (0, 1)
YEAR_MS = 365 * DAY_MS
FAMILY = ("spouse", "parent", "child", "relative")
ADULT_RELATIONS = ("spouse", "legal_rep", "shareholder", "guarantor", "investor")
# which party kinds a relation (party_a, party_b, relation) may join
RELATION_KINDS = {
    "spouse": ({"person"}, {"person"}),
    "parent": ({"person"}, {"person"}),
    "child": ({"person"}, {"person"}),
    "relative": ({"person"}, {"person"}),
    "other": ({"person", "company"}, {"person", "company"}),
    "legal_rep": ({"person"}, {"company"}),
    "shareholder": ({"person", "company"}, {"company"}),
    "investor": ({"person", "company"}, {"company"}),
    "affiliate": ({"company"}, {"company"}),
    "guarantor": ({"person", "company"}, {"person", "company"}),
}


def read_bank(root: Path) -> dict[str, pl.DataFrame]:
    """The bank's CSV files with amounts as int64 minor units and times as UTC ms."""
    out = {}
    for name, spec in TABLES.items():
        df = pl.read_csv(root / f"{name}.csv", infer_schema=False)
        conv = []
        for c in spec.columns:
            if c.kind == "money":
                conv.append(pl.col(c.name).str.replace(".", "", literal=True).cast(pl.Int64))
            elif c.kind == "ts":
                conv.append(
                    pl.col(c.name)
                    .str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_unit="ms")
                    .dt.epoch("ms")
                )
            elif c.kind == "float":
                conv.append(pl.col(c.name).cast(pl.Float64))
        out[name] = df.with_columns(conv)
    p = out["parties"]
    birth = (
        pl.when(pl.col("kind") == "person")
        .then(pl.col("id_number").str.slice(6, 8).str.to_date("%Y%m%d", strict=False))
        .cast(pl.Datetime("ms"))
        .dt.epoch("ms")
    )
    out["parties"] = p.with_columns(birth=birth)
    return out


# -------------------------------------------------------------------------------- rules


def _first_disbursement(b):
    return b["disbursements"].group_by("loan_id").agg(pl.col("ts").min().alias("first_ts"))


def grade_on_or_after_first_disbursement(b):
    """No loan is graded before its money was paid out."""
    return b["classifications"].join(_first_disbursement(b), on="loan_id", how="left").filter(
        pl.col("first_ts").is_null() | (pl.col("as_of") < pl.col("first_ts"))
    )


def grades_follow_repayments(b):
    """One manual grade per quarter end after the first disbursement, and it is the grade
    the product's default classification rule gives for the loan's overdue days that day
    (``flowgraph classify`` would raise none for being overdue); above ``normal`` the reason
    is ``overdue N days`` and the borrower has repaid nothing in those N days."""
    p = ClassificationParams()
    loans = b["loans"].select("loan_id", "amount", "maturity_date")
    first = dict(b["disbursements"].group_by("loan_id").agg(pl.col("ts").min()).rows())
    borrower = dict(b["loans"].select("loan_id", "borrower_id").rows())
    owner = dict(b["accounts"].select("account_id", "owner_id").rows())
    own_paid = {}
    for loan, acct, ts in b["repayments"].select("loan_id", "account_id", "ts").rows():
        if owner[acct] == borrower[loan]:
            own_paid.setdefault(loan, []).append(ts)
    grades = {(r[0], r[1]): r[2:] for r in b["classifications"].select(
        "loan_id", "as_of", "grade", "source", "reason").rows()}  # fmt: skip
    bad = [(loan, q, g[0], "graded before the first disbursement")
           for (loan, q), g in grades.items() if q <= first[loan]]  # fmt: skip
    for q in QUARTER_ENDS:
        day = datetime.fromtimestamp(q / 1000, UTC).date()
        st = repayment_status(loans, b["disbursements"], b["repayments"], day, p.schedule_params())
        for loan, overdue in st.select("loan_id", "overdue_days").rows():
            if first[loan] >= q:
                continue
            want = next((g for days, g in p.overdue_floors() if overdue > days), "normal")
            got = grades.get((loan, q))
            reason = None if want == "normal" else f"overdue {overdue} days"
            if got is None or got != (want, "manual", reason):
                bad.append((loan, q, str(got), f"want {want} ({overdue} days overdue)"))
            elif any(q - overdue * DAY_MS <= t < q for t in own_paid.get(loan, ())):
                bad.append((loan, q, want, "repaid while overdue"))
    return pl.DataFrame(bad, schema=["loan_id", "as_of", "grade", "why"], orient="row")


def repayment_after_first_disbursement_and_before_maturity(b):
    loans = b["loans"].select("loan_id", "maturity_date")
    return (
        b["repayments"]
        .join(_first_disbursement(b), on="loan_id", how="left")
        .join(loans, on="loan_id", how="left")
        .filter(
            pl.col("first_ts").is_null()
            | (pl.col("ts") <= pl.col("first_ts"))
            | (pl.col("ts") > pl.col("maturity_date"))
        )
    )


def _owed(b):
    """Principal plus simple interest, ACT/360 from the first disbursement's day to maturity."""
    days = (pl.col("maturity_date") - (pl.col("first_ts") - pl.col("first_ts") % DAY_MS)) / DAY_MS
    return (
        b["loans"]
        .join(_first_disbursement(b), on="loan_id")
        .with_columns(owed=pl.col("amount") * (1 + pl.col("rate") * days / 360))
    )


def repaid_at_most_principal_plus_interest(b):
    """Nobody repays more than is owed (one minor unit of float slack)."""
    paid = b["repayments"].group_by("loan_id").agg(pl.col("amount").sum().alias("paid"))
    return _owed(b).join(paid, on="loan_id").filter(pl.col("paid") > pl.col("owed") + 1)


def disbursements_make_up_the_loan(b):
    """Each loan is paid out in full, no tranche above the loan, all before maturity."""
    d = b["disbursements"].group_by("loan_id").agg(
        pl.col("amount").sum().alias("paid_out"),
        pl.col("amount").max().alias("largest"),
        pl.col("ts").max().alias("last_ts"),
    )
    return b["loans"].join(d, on="loan_id", how="full", coalesce=True).filter(
        pl.col("amount").is_null()
        | pl.col("paid_out").is_null()
        | (pl.col("paid_out") != pl.col("amount"))
        | (pl.col("largest") > pl.col("amount"))
        | (pl.col("last_ts") >= pl.col("maturity_date"))
    )


def _account_uses(b):
    tx = b["transactions"]
    return pl.concat(
        [
            tx.select(pl.col("src_account").alias("account_id"), "ts", pl.lit("tx out").alias("use")),
            tx.select(pl.col("dst_account").alias("account_id"), "ts", pl.lit("tx in").alias("use")),
            b["disbursements"].select("account_id", "ts", pl.lit("disbursement").alias("use")),
            b["repayments"].select("account_id", "ts", pl.lit("repayment").alias("use")),
        ]
    )


def accounts_used_only_when_open_and_active(b):
    """Money moves through an account only after it was opened, and never a dormant one."""
    acc = b["accounts"].select("account_id", "opened_at", "status")
    return _account_uses(b).join(acc, on="account_id", how="left").filter(
        pl.col("opened_at").is_null()
        | (pl.col("ts") < pl.col("opened_at"))
        | (pl.col("status") != "active")
    )


def events_inside_the_data_year(b):
    rows = []
    for t, col in (("transactions", "ts"), ("disbursements", "ts"), ("repayments", "ts"),
                   ("classifications", "as_of")):  # fmt: skip
        bad = b[t].filter((pl.col(col) < START_MS) | (pl.col(col) >= END_MS))
        rows += [(t, r) for r in bad.rows()]
    return pl.DataFrame({"table": [r[0] for r in rows], "row": [str(r[1]) for r in rows]})


def no_self_transfers(b):
    return b["transactions"].filter(pl.col("src_account") == pl.col("dst_account"))


def references_resolve(b):
    """Every id a row points to exists."""
    acc, par, lo = (set(b[t][c]) for t, c in (("accounts", "account_id"), ("parties", "party_id"),
                                               ("loans", "loan_id")))  # fmt: skip
    bad = []
    for t, col, known in (
        ("transactions", "src_account", acc), ("transactions", "dst_account", acc),
        ("accounts", "owner_id", par), ("loans", "borrower_id", par),
        ("relations", "party_a", par), ("relations", "party_b", par),
        ("disbursements", "loan_id", lo), ("disbursements", "account_id", acc),
        ("repayments", "loan_id", lo), ("repayments", "account_id", acc),
        ("classifications", "loan_id", lo),
    ):  # fmt: skip
        bad += [(t, col, x) for x in set(b[t][col]) - known]
    return pl.DataFrame(bad, schema=["table", "column", "id"], orient="row")


def ids_unique(b):
    """Table keys, national id numbers / company codes, and ids across tables never collide."""
    bad = []
    for t, spec in TABLES.items():
        # a derived id (repayment_id) is left out of the files: what it is made of is unique
        key = [k for k in spec.key if k in b[t].columns] or list(spec.derived[spec.key[0]])
        dup = b[t].filter(pl.struct(key).is_duplicated())
        bad += [(t, str(r)) for r in dup.rows()]
    dup = b["parties"].filter(pl.col("id_number").is_duplicated())
    bad += [("parties.id_number", str(r)) for r in dup.rows()]
    ids = [set(b["parties"]["party_id"]), set(b["accounts"]["account_id"]),
           set(b["loans"]["loan_id"]), set(b["transactions"]["tx_id"])]  # fmt: skip
    for i, x in enumerate(ids):
        for y in ids[i + 1 :]:
            bad += [("ids of two tables", v) for v in x & y]
    return pl.DataFrame(bad, schema=["what", "row"], orient="row")


def party_lives_in_one_city(b):
    """The address is ``<region><a district of that city><road><number>号``; a company is
    named after its region (``上海…有限公司`` or ``…（上海）有限公司``)."""
    city_district = {
        (c, d) for c, ds in DISTRICTS.items() for d in ds
    }
    p = b["parties"]
    bad = []
    for r in p.iter_rows(named=True):
        city, addr = r["region"], r["address"]
        rest = addr[len(city):] if addr.startswith(city) else None
        ok = rest is not None and any(
            rest.startswith(d) and rest[len(d):].startswith(tuple(ROADS))
            for c, d in city_district if c == city
        )
        others = [c for c, _ in REGIONS if c != city and c in addr]
        if r["kind"] == "company" and not (
            r["name"].startswith(city) or f"（{city}）" in r["name"]
        ):
            ok = False
        if not ok or others:
            bad.append((r["party_id"], r["kind"], r["name"], city, addr))
    return pl.DataFrame(bad, schema=["party_id", "kind", "name", "region", "address"], orient="row")


def loan_fields_match_borrower(b):
    p = b["parties"].select("party_id", "kind", "region", pl.col("industry").alias("p_industry"))
    return b["loans"].join(p, left_on="borrower_id", right_on="party_id", how="left").filter(
        (pl.col("region") != pl.col("region_right"))
        | pl.when(pl.col("kind") == "person")
        .then(pl.col("industry") != "personal")
        .otherwise(pl.col("industry") != pl.col("p_industry"))
    )


def accounts_fit_their_owner(b):
    """Personal accounts for persons, corporate for companies, opened after a person's birth."""
    p = b["parties"].select("party_id", pl.col("kind").alias("owner_kind"), "birth")
    return b["accounts"].join(p, left_on="owner_id", right_on="party_id", how="left").filter(
        (pl.col("kind") != pl.when(pl.col("owner_kind") == "person").then(pl.lit("personal"))
         .otherwise(pl.lit("corporate")))
        | (pl.col("opened_at") < pl.col("birth").fill_null(pl.col("opened_at")))
    )  # fmt: skip


def relations_make_sense(b):
    """Two distinct parties of fitting kinds; one family tie per pair and one spouse per
    person; a parent at least 16 years older than the child; nobody related before birth,
    and spouses, legal representatives, shareholders, guarantors and investors adults."""
    p = b["parties"].select("party_id", "kind", "birth")
    r = (
        b["relations"]
        .join(p.rename(lambda c: c + "_a"), left_on="party_a", right_on="party_id_a", how="left")
        .join(p.rename(lambda c: c + "_b"), left_on="party_b", right_on="party_id_b", how="left")
    )
    bad = []
    for x in r.iter_rows(named=True):
        ka, kb = RELATION_KINDS[x["relation"]]
        why = []
        if x["party_a"] == x["party_b"]:
            why.append("self")
        if x["kind_a"] not in ka or x["kind_b"] not in kb:
            why.append("party kinds")
        births = [t for t in (x["birth_a"], x["birth_b"]) if t is not None]
        if x["since"] is not None and births:
            adult = 18 * YEAR_MS if x["relation"] in ADULT_RELATIONS else 0
            if x["since"] < max(births) + adult:
                why.append("since before birth / adulthood")
        if x["relation"] in ("parent", "child"):
            parent, child = ((x["birth_a"], x["birth_b"]) if x["relation"] == "parent"
                             else (x["birth_b"], x["birth_a"]))  # fmt: skip
            if child - parent < 16 * YEAR_MS:
                why.append("parent not 16 years older")
        if why:
            bad.append((x["party_a"], x["party_b"], x["relation"], ", ".join(why)))
    fam = r.filter(pl.col("relation").is_in(FAMILY)).select(
        pl.min_horizontal("party_a", "party_b").alias("x"),
        pl.max_horizontal("party_a", "party_b").alias("y"),
        "relation",
    )
    for x, y, rel in fam.filter(pl.struct("x", "y").is_duplicated()).rows():
        bad.append((x, y, rel, "two family ties"))
    sp = r.filter(pl.col("relation") == "spouse")
    both = pl.concat([sp["party_a"], sp["party_b"]])
    for who in both.filter(both.is_duplicated()).unique().to_list():
        bad.append((who, "", "spouse", "two spouses"))
    return pl.DataFrame(bad, schema=["party_a", "party_b", "relation", "why"], orient="row")


def payment_mode_matches_disbursement_account(b):
    owner = b["accounts"].select("account_id", "owner_id")
    return (
        b["disbursements"]
        .join(b["loans"].select("loan_id", "borrower_id", "payment_mode"), on="loan_id")
        .join(owner, on="account_id")
        .filter((pl.col("owner_id") == pl.col("borrower_id")) != (pl.col("payment_mode") == "self"))
    )


RULES: dict[str, Callable[[dict], pl.DataFrame]] = {
    f.__name__: f
    for f in (
        grade_on_or_after_first_disbursement,
        grades_follow_repayments,
        repayment_after_first_disbursement_and_before_maturity,
        repaid_at_most_principal_plus_interest,
        disbursements_make_up_the_loan,
        accounts_used_only_when_open_and_active,
        events_inside_the_data_year,
        no_self_transfers,
        references_resolve,
        ids_unique,
        party_lives_in_one_city,
        loan_fields_match_borrower,
        accounts_fit_their_owner,
        relations_make_sense,
        payment_mode_matches_disbursement_account,
    )
}


# -------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def banks(tmp_path_factory) -> dict[int, dict[str, pl.DataFrame]]:
    out = {}
    for seed in SEEDS:
        root = tmp_path_factory.mktemp(f"bank{seed}")
        generate(root, "tiny", seed)
        out[seed] = read_bank(root)
    return out


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("seed", SEEDS)
def test_rule_holds(banks, seed, rule):
    bad = RULES[rule](banks[seed])
    assert bad.height == 0, f"seed {seed}: {rule} broken by {bad.height} row(s):\n{bad.head(5)}"


# ------------------------------------------------------------- each rule can fail


def _set(df: pl.DataFrame, row: int, **values) -> pl.DataFrame:
    """``df`` with the columns of one row replaced."""
    idx = pl.int_range(pl.len()) == row
    return df.with_columns(
        pl.when(idx).then(pl.lit(v, dtype=df.schema[c])).otherwise(pl.col(c)).alias(c)
        for c, v in values.items()
    )


def _used_account(b) -> tuple[str, int]:
    tx = b["transactions"].row(0, named=True)
    return tx["src_account"], tx["ts"]


def _break_opened(b):
    acct, ts = _used_account(b)
    i = b["accounts"]["account_id"].to_list().index(acct)
    return {"accounts": _set(b["accounts"], i, opened_at=ts + 1)}


def _break_grade_date(b):
    d = b["disbursements"].row(0, named=True)
    extra = b["classifications"].head(1).with_columns(
        loan_id=pl.lit(d["loan_id"]), as_of=pl.lit(d["ts"] - DAY_MS)
    )
    return {"classifications": pl.concat([b["classifications"], extra])}


def _break_grade(b):
    i = b["classifications"]["grade"].to_list().index("normal")
    return {"classifications": _set(b["classifications"], i, grade="substandard")}


def _break_repayment_date(b):
    r = b["repayments"].row(0, named=True)
    first = b["disbursements"].filter(pl.col("loan_id") == r["loan_id"])["ts"].min()
    return {"repayments": _set(b["repayments"], 0, ts=first)}


def _break_overpaid(b):
    r = b["repayments"].row(0, named=True)
    amount = b["loans"].filter(pl.col("loan_id") == r["loan_id"])["amount"][0]
    return {"repayments": _set(b["repayments"], 0, amount=2 * amount)}


def _break_relation(b):
    p = b["parties"].filter(pl.col("kind") == "person")["party_id"][0]
    return {"relations": _set(b["relations"], 0, party_a=p, party_b=p, relation="spouse")}


def _break_id_number(b):
    return {"parties": _set(b["parties"], 1, id_number=b["parties"]["id_number"][0])}


def _break_city(b):
    i = 0
    city = b["parties"]["region"][i]
    other = next(c for c, _ in REGIONS if c != city)
    return {"parties": _set(b["parties"], i, region=other)}


BREAKS: dict[str, Callable[[dict], dict]] = {
    "grade_on_or_after_first_disbursement": _break_grade_date,
    "grades_follow_repayments": _break_grade,
    "repayment_after_first_disbursement_and_before_maturity": _break_repayment_date,
    "repaid_at_most_principal_plus_interest": _break_overpaid,
    "disbursements_make_up_the_loan": lambda b: {
        "disbursements": _set(b["disbursements"], 0, amount=b["disbursements"]["amount"][0] + 1)
    },
    "accounts_used_only_when_open_and_active": _break_opened,
    "events_inside_the_data_year": lambda b: {"transactions": _set(b["transactions"], 0, ts=END_MS)},
    "no_self_transfers": lambda b: {
        "transactions": _set(b["transactions"], 0, dst_account=b["transactions"]["src_account"][0])
    },
    "references_resolve": lambda b: {"relations": _set(b["relations"], 0, party_b="P_unknown")},
    "ids_unique": _break_id_number,
    "party_lives_in_one_city": _break_city,
    "loan_fields_match_borrower": lambda b: {
        "loans": _set(b["loans"], 0, industry="no such industry")
    },
    "accounts_fit_their_owner": lambda b: {
        "accounts": _set(b["accounts"], 0, kind={"personal": "corporate", "corporate": "personal"}[
            b["accounts"]["kind"][0]])
    },
    "relations_make_sense": _break_relation,
    "payment_mode_matches_disbursement_account": lambda b: {
        "loans": _set(b["loans"], 0, payment_mode={"self": "entrusted", "entrusted": "self"}[
            b["loans"]["payment_mode"][0]])
    },
}


def test_every_rule_has_a_break():
    assert set(BREAKS) == set(RULES)


@pytest.mark.parametrize("rule", list(RULES))
def test_rule_catches_its_break(banks, rule):
    clean = banks[SEEDS[0]]
    broken = clean | BREAKS[rule](clean)
    assert RULES[rule](broken).height > 0
