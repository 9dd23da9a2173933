"""``neo4j export-import``: CSV files and the ``neo4j-admin database import full`` command.

The bulk path for a first load of hundreds of millions of transactions (``neo4j push`` is
for syncs). Headers follow neo4j-admin 5: id spaces, ``:START_ID``/``:END_ID``, ``:TYPE``
and typed properties.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from flowgraph.core.files import replace_directory
from flowgraph.core.schema import TABLES
from flowgraph.neo4j.source import store_fingerprint
from flowgraph.store.embedded import Store


@dataclass(frozen=True)
class _ImportFile:
    name: str
    kind: str  # "nodes" or "relationships"
    label: str  # node label or relationship type
    frame: Callable[[Store], pl.LazyFrame]


_NEO4J_TYPE = {"str": "", "money": ":long", "ts": ":long", "float": ":double"}


def _props(table: str, skip: tuple[str, ...] = ()) -> list[pl.Expr]:
    """Property columns of a table renamed to ``name:type`` headers."""
    return [
        pl.col(c.name).alias(c.name + _NEO4J_TYPE[c.kind])
        for c in TABLES[table].columns if c.name not in skip
    ]


def _missing(store: Store, known: pl.LazyFrame, refs: list[pl.LazyFrame]) -> pl.LazyFrame:
    """Ids referenced by ``refs`` (column ``id``) but absent from ``known`` (column ``id``)."""
    return (
        pl.concat(refs).drop_nulls().unique()
        .join(known, on="id", how="anti").sort("id")
    )


def _party_refs(s: Store) -> list[pl.LazyFrame]:
    return [
        s.scan("accounts").select(pl.col("owner_id").alias("id")),
        s.scan("loans").select(pl.col("borrower_id").alias("id")),
        s.scan("relations").select(pl.col("party_a").alias("id")),
        s.scan("relations").select(pl.col("party_b").alias("id")),
    ]


def _loan_refs(s: Store) -> list[pl.LazyFrame]:
    return [s.scan(t).select(pl.col("loan_id").alias("id")) for t in ("disbursements", "repayments")]


def _account_refs(s: Store) -> list[pl.LazyFrame]:
    tx = s.scan("transactions")
    return [
        tx.select(pl.col("src_account").alias("id")), tx.select(pl.col("dst_account").alias("id")),
        s.scan("disbursements").select(pl.col("account_id").alias("id")),
        s.scan("repayments").select(pl.col("account_id").alias("id")),
    ]


IMPORT_FILES: tuple[_ImportFile, ...] = (
    _ImportFile("parties.csv", "nodes", "Party", lambda s: s.scan("parties").select(
        pl.col("party_id").alias("party_id:ID(Party)"), *_props("parties", ("party_id",)))),
    _ImportFile("parties_referenced.csv", "nodes", "Party", lambda s: _missing(
        s, s.scan("parties").select(pl.col("party_id").alias("id")), _party_refs(s)
    ).select(pl.col("id").alias("party_id:ID(Party)"))),
    _ImportFile("accounts.csv", "nodes", "Account", lambda s: s.scan("accounts").select(
        pl.col("account_id").alias("account_id:ID(Account)"), *_props("accounts", ("account_id",)))),
    _ImportFile("accounts_referenced.csv", "nodes", "Account", lambda s: _missing(
        s, s.scan("accounts").select(pl.col("account_id").alias("id")), _account_refs(s)
    ).select(pl.col("id").alias("account_id:ID(Account)"))),
    _ImportFile("loans.csv", "nodes", "Loan", lambda s: s.scan("loans").select(
        pl.col("loan_id").alias("loan_id:ID(Loan)"), *_props("loans", ("loan_id",)))),
    _ImportFile("loans_referenced.csv", "nodes", "Loan", lambda s: _missing(
        s, s.scan("loans").select(pl.col("loan_id").alias("id")), _loan_refs(s)
    ).select(pl.col("id").alias("loan_id:ID(Loan)"))),
    _ImportFile("owns.csv", "relationships", "OWNS", lambda s: s.scan("accounts").select(
        pl.col("owner_id").alias(":START_ID(Party)"), pl.col("account_id").alias(":END_ID(Account)"),
        pl.lit("OWNS").alias(":TYPE"))),
    _ImportFile("applied.csv", "relationships", "APPLIED", lambda s: s.scan("loans").select(
        pl.col("borrower_id").alias(":START_ID(Party)"), pl.col("loan_id").alias(":END_ID(Loan)"),
        pl.lit("APPLIED").alias(":TYPE"))),
    _ImportFile("related.csv", "relationships", "RELATED", lambda s: s.scan("relations").select(
        pl.col("party_a").alias(":START_ID(Party)"), pl.col("party_b").alias(":END_ID(Party)"),
        pl.lit("RELATED").alias(":TYPE"), pl.col("relation"), pl.col("since").alias("since:long"))),
    _ImportFile("transfers.csv", "relationships", "TRANSFER", lambda s: s.scan("transactions").select(
        pl.col("src_account").alias(":START_ID(Account)"), pl.col("dst_account").alias(":END_ID(Account)"),
        pl.lit("TRANSFER").alias(":TYPE"),
        *_props("transactions", ("src_account", "dst_account")))),
    _ImportFile("disbursed_to.csv", "relationships", "DISBURSED_TO", lambda s: s.scan("disbursements").select(
        pl.col("loan_id").alias(":START_ID(Loan)"), pl.col("account_id").alias(":END_ID(Account)"),
        pl.lit("DISBURSED_TO").alias(":TYPE"), *_props("disbursements", ("loan_id", "account_id")))),
    _ImportFile("repaid.csv", "relationships", "REPAID", lambda s: s.scan("repayments").select(
        pl.col("account_id").alias(":START_ID(Account)"), pl.col("loan_id").alias(":END_ID(Loan)"),
        pl.lit("REPAID").alias(":TYPE"), *_props("repayments", ("loan_id", "account_id")))),
)


def import_command(directory: Path, files: dict[str, int], database: str = "neo4j") -> str:
    """The ``neo4j-admin database import full`` command for the files of a directory."""
    # an absolute path as given (a container path such as /import must not be resolved here)
    directory = Path(directory) if Path(directory).is_absolute() else Path(directory).resolve()
    # no --overwrite-destination: replacing a database that holds data is the user's call
    args = [f"neo4j-admin database import full {database}",
            "--multiline-fields=true", "--id-type=string"]
    for f in IMPORT_FILES:
        if f.name in files:
            flag = "--nodes" if f.kind == "nodes" else "--relationships"
            # node labels on the command line; relationship types in the :TYPE column
            label = f"{f.label}=" if f.kind == "nodes" else ""
            args.append(f"{flag}={label}{directory / f.name}")
    args.append(f"--nodes=FlowgraphSync={directory / 'flowgraph_sync.csv'}")
    return " \\\n  ".join(args)


def export_import(
    store: Store,
    directory: str | os.PathLike,
    database: str = "neo4j",
    progress: Callable[[str], None] | None = None,
    command_dir: str | os.PathLike | None = None,
) -> dict:
    """Write ``neo4j-admin database import full`` CSV files for the whole store.

    Parameters
    ----------
    store : Store
        The store to export.
    directory : path
        Output folder (created or replaced; written aside, then renamed into place).
    database : str
        Database name used in the printed command.
    progress : callable, optional
        ``progress(message)`` per file.
    command_dir : path, optional
        The folder as ``neo4j-admin`` will see it (e.g. ``/import`` inside a container);
        default: ``directory`` itself.

    Returns
    -------
    dict
        ``{"directory", "files": {name: rows}, "command"}``; ``command`` is also in
        ``README.txt``.

    Notes
    -----
    Each file carries its own header (``party_id:ID(Party)``, ``:START_ID(Account)``,
    ``:END_ID(Account)``, ``:TYPE``, ``ts:long``, ``amount:long``, ``rate:double``);
    id spaces Party, Account and Loan keep equal ids of different kinds apart. Fields
    are quoted when needed (quotes doubled; commas and newlines kept, hence
    ``--multiline-fields=true``); a null is an empty unquoted field (no property), an
    empty string is ``""``. Files are written by polars' streaming ``sink_csv``.
    Ids referenced but absent from their table (an account only seen in transfers)
    go to ``*_referenced.csv`` so no relationship is dropped, as ``neo4j push`` does
    with MERGE. Run ``flowgraph neo4j init`` after the import (constraints after bulk
    loads). The FlowgraphSync node makes the imported graph report the store's
    snapshot id.
    """
    final = Path(directory)
    if final.exists() and (not final.is_dir() or (
            any(final.iterdir()) and not (final / "flowgraph_sync.csv").exists())):
        # the folder is replaced as a whole: never do that to something that is not an export
        raise FileExistsError(
            f"{final} exists and is not an earlier flowgraph export (no flowgraph_sync.csv); "
            "give a new or empty folder"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    files: dict[str, int] = {}
    try:
        for f in IMPORT_FILES:
            if progress:
                progress(f"writing {f.name}")
            frame = f.frame(store)
            frame.sink_csv(tmp / f.name, quote_style="necessary", include_header=True)
            # counted from the (Parquet) source, not by re-reading a CSV of 100M+ lines
            files[f.name] = frame.select(pl.len()).collect().item()
        fp = store_fingerprint(store)
        sync = pl.DataFrame({
            "key:ID(FlowgraphSync)": ["store"], "snapshot_id": [store.snapshot_id],
            "transfers:long": [fp["transfers"]], "accounts:long": [fp["accounts"]],
            "last_tx_id": [fp["last_tx_id"]],
        }, schema={"key:ID(FlowgraphSync)": pl.Utf8, "snapshot_id": pl.Utf8,
                   "transfers:long": pl.Int64, "accounts:long": pl.Int64, "last_tx_id": pl.Utf8})
        sync.write_csv(tmp / "flowgraph_sync.csv", quote_style="necessary")
        command = import_command(Path(command_dir) if command_dir else final, files, database)
        (tmp / "README.txt").write_text(
            "Bulk load of a flowgraph store into a new Neo4j 5 database (offline, "
            "neo4j-admin 5.x syntax).\n"
            f"Store snapshot: {store.snapshot_id}\n\n"
            f"Stop the database {database!r} (neo4j-admin writes its files), then run:\n\n"
            f"{command}\n\n"
            f"If {database!r} already exists (the default database of a new server does),\n"
            "add --overwrite-destination=true: it DELETES that database's content.\n"
            "The neo4j-admin process must be able to read this folder (it is owner-only:\n"
            "it holds personal data); with Docker, mount it and run the command inside.\n"
            "Then start Neo4j (`CREATE DATABASE` it if it is not the default one) and run\n"
            "`flowgraph neo4j init` to add the constraints and indexes.\n\n"
            "Files (rows, header excluded):\n"
            + "".join(f"  {n}\t{r}\n" for n, r in files.items())
            + "  flowgraph_sync.csv\t1\n"
        )
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"directory": str(final.resolve()), "snapshot_id": store.snapshot_id,
            "files": files, "command": command}


__all__ = ["IMPORT_FILES", "export_import", "import_command"]
