"""Read an LDBC FinBench snapshot folder as contract tables.

FinBench writes ``|``-separated files read here by header name. Person and company ids
share one number space, so parties become ``person:ID`` / ``company:ID``; account and
loan ids are kept. Transfers and withdrawals are transactions (channel ``transfer`` /
``withdraw``, tx ids ``transfer:N`` / ``withdraw:N`` from the 1-based file row);
deposits are disbursements; applicants are borrowers; guarantee and invest edges are
relations (``guarantor`` / ``investor``, FinBench's own label kept in ``detail``).
FinBench parties have no phone or address, so no shared_phone/shared_address links
come from it.

The frames hold text, like a CSV, and go through the same validation as any input.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flowgraph.core.errors import IngestError

# FinBench account types that are destination categories in flowgraph's rules
ACCOUNT_CATEGORY = {"brokerage account": "brokerage"}


def _scan(folder: Path, name: str) -> pl.LazyFrame:
    path = folder / name
    if not path.exists():
        raise IngestError(f"{path}: FinBench file missing")
    return pl.scan_csv(path, separator="|", infer_schema=False, quote_char=None)


def _ns(prefix: str, col: str) -> pl.Expr:
    return pl.concat_str([pl.lit(prefix + ":"), pl.col(col)])


def read_finbench(folder: str | Path) -> list[tuple[str, str, pl.LazyFrame]]:
    """``(source name, table, text frame)`` for every contract table FinBench feeds."""
    f = Path(folder)
    if not f.is_dir():
        raise IngestError(f"{f}: not a FinBench snapshot folder")
    src = lambda name: str(f / name)  # noqa: E731

    persons = _scan(f, "Person.csv").select(
        _ns("person", "personId").alias("party_id"),
        pl.lit("person").alias("kind"),
        pl.col("personName").alias("name"),
        pl.col("country").alias("region"),
        pl.col("city"),
        pl.col("isBlocked").alias("blocked"),
    )
    companies = _scan(f, "Company.csv").select(
        _ns("company", "companyId").alias("party_id"),
        pl.lit("company").alias("kind"),
        pl.col("companyName").alias("name"),
        pl.col("business").alias("industry"),
        pl.col("country").alias("region"),
        pl.col("city"),
        pl.col("isBlocked").alias("blocked"),
    )
    owners = pl.concat(
        [
            _scan(f, "PersonOwnAccount.csv").select(
                "accountId", _ns("person", "personId").alias("owner_id")
            ),
            _scan(f, "CompanyOwnAccount.csv").select(
                "accountId", _ns("company", "companyId").alias("owner_id")
            ),
        ]
    )
    accounts = (
        _scan(f, "Account.csv")
        .join(owners, on="accountId", how="left")
        .select(
            pl.col("accountId").alias("account_id"),
            pl.col("owner_id"),
            pl.col("createTime").alias("opened_at"),
            pl.col("accoutType").alias("kind"),
            pl.col("accoutType").replace_strict(ACCOUNT_CATEGORY, default=None).alias("category"),
            pl.when(pl.col("isBlocked") == "true")
            .then(pl.lit("blocked"))
            .otherwise(pl.lit("active"))
            .alias("status"),
            pl.col("accountLevel").alias("level"),
        )
    )
    relations = pl.concat(
        [
            _scan(f, "PersonGuaranteePerson.csv").select(
                _ns("person", "fromId").alias("party_a"),
                _ns("person", "toId").alias("party_b"),
                pl.lit("guarantor").alias("relation"),
                pl.col("createTime").alias("since"),
                pl.col("relation").alias("detail"),
            ),
            _scan(f, "CompanyGuaranteeCompany.csv").select(
                _ns("company", "fromId").alias("party_a"),
                _ns("company", "toId").alias("party_b"),
                pl.lit("guarantor").alias("relation"),
                pl.col("createTime").alias("since"),
                pl.col("relation").alias("detail"),
            ),
            _scan(f, "PersonInvestCompany.csv").select(
                _ns("person", "investorId").alias("party_a"),
                _ns("company", "companyId").alias("party_b"),
                pl.lit("investor").alias("relation"),
                pl.col("createTime").alias("since"),
                pl.concat_str([pl.lit("ratio="), pl.col("ratio")]).alias("detail"),
            ),
            _scan(f, "CompanyInvestCompany.csv").select(
                _ns("company", "investorId").alias("party_a"),
                _ns("company", "companyId").alias("party_b"),
                pl.lit("investor").alias("relation"),
                pl.col("createTime").alias("since"),
                pl.concat_str([pl.lit("ratio="), pl.col("ratio")]).alias("detail"),
            ),
        ]
    )
    applicants = pl.concat(
        [
            _scan(f, "PersonApplyLoan.csv").select(
                "loanId", _ns("person", "personId").alias("borrower_id"), "org"
            ),
            _scan(f, "CompanyApplyLoan.csv").select(
                "loanId", _ns("company", "companyId").alias("borrower_id"), "org"
            ),
        ]
    )
    loans = (
        _scan(f, "Loan.csv")
        .join(applicants, on="loanId", how="left")
        .select(
            pl.col("loanId").alias("loan_id"),
            pl.col("borrower_id"),
            pl.col("loanAmount").alias("amount"),
            pl.col("loanUsage").alias("purpose"),
            pl.col("interestRate").alias("rate"),
            pl.col("org").alias("lender"),
            pl.col("createTime").alias("applied_at"),
            pl.col("balance"),
        )
    )
    disbursements = _scan(f, "LoanDepositAccount.csv").select(
        pl.col("loanId").alias("loan_id"),
        pl.col("accountId").alias("account_id"),
        pl.col("amount"),
        pl.col("createTime").alias("ts"),
    )
    repayments = _scan(f, "AccountRepayLoan.csv").select(
        pl.col("loanId").alias("loan_id"),
        pl.col("accountId").alias("account_id"),
        pl.col("amount"),
        pl.col("createTime").alias("ts"),
    )

    def moves(name: str, channel: str, extra: list[str]) -> pl.LazyFrame:
        lf = _scan(f, name).with_row_index("__n", offset=1)
        return lf.select(
            pl.concat_str([pl.lit(channel + ":"), pl.col("__n").cast(pl.Utf8)]).alias("tx_id"),
            pl.col("createTime").alias("ts"),
            pl.col("fromId").alias("src_account"),
            pl.col("toId").alias("dst_account"),
            pl.col("amount"),
            pl.lit(channel).alias("channel"),
            *[pl.col(c) for c in extra],
        )

    transfers = moves("AccountTransferAccount.csv", "transfer", ["comment", "orderNum", "payType", "goodsType"])
    transfers = transfers.rename({"comment": "memo"})
    withdrawals = moves("AccountWithdrawAccount.csv", "withdraw", [])
    return [
        (src("Person.csv"), "parties", persons),
        (src("Company.csv"), "parties", companies),
        (src("Account.csv"), "accounts", accounts),
        (src("Loan.csv"), "loans", loans),
        (src("LoanDepositAccount.csv"), "disbursements", disbursements),
        (src("AccountRepayLoan.csv"), "repayments", repayments),
        (src("AccountTransferAccount.csv"), "transactions", transfers),
        (src("AccountWithdrawAccount.csv"), "transactions", withdrawals),
        (src("*GuaranteePerson|Company, *Invest*"), "relations", relations),
    ]
