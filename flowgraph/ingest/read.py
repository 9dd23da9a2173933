"""Read input files as frames of text: which table a file holds, CSV and Parquet.

Every value reaches validation as text, so CSV and Parquet go through the same rules
(:mod:`flowgraph.core.values`). Parquet columns are turned into text that says exactly
what the typed value is:

- timestamps (any unit) → ISO-8601 UTC with milliseconds; a time-zone-aware one is
  converted to UTC (08:00+08:00 is 00:00Z), a naive one is UTC; sub-millisecond digits are
  cut towards the past, as in CSV; dates → ``YYYY-MM-DD``;
- decimals → their digits with their scale (``1.500``), which the money rules accept when
  the places after the second are zeros;
- floating-point values in a money column → the value marked as floating point, which
  the money rules refuse (a float is not an exact decimal); in other columns → text;
- integers → their digits (an integer amount is whole units; an integer timestamp is
  epoch milliseconds, under the usual digit-count rule).

A file's table comes from its name (``transactions.csv``, ``account_2024.parquet``) or,
when the name does not say, from its header (:func:`table_for_header`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from flowgraph.core.errors import IngestError
from flowgraph.core.schema import TABLE_NAMES, TABLES
from flowgraph.core.values import FLOAT_MARK

_ALIASES = {name: (name, name.rstrip("s")) for name in TABLE_NAMES}
_ALIASES["classifications"] += ("classification", "grades")
_ISO_MS = "%Y-%m-%dT%H:%M:%S%.3fZ"



def table_for_file(path: Path) -> str | None:
    """Recognise the table from a file name: ``transactions.csv``, ``account_2024.parquet``…"""
    stem = path.name.split(".")[0].lower()
    for name, aliases in _ALIASES.items():
        if any(stem == a or stem.startswith(a + "_") or stem.startswith(a + "-") for a in aliases):
            return name
    return None



def detect_delimiter(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    return "|" if header.count("|") > header.count(",") else ","



def table_for_header(names: Iterable[str]) -> tuple[str | None, list[str]]:
    """(table, []) when exactly one table fits a header best, else (None, the tied
    candidates). A table fits when the header has all its required columns (derived ones
    may be absent); the best fit names the most of the table's columns.

    >>> table_for_header(["tx_id", "ts", "src_account", "dst_account", "amount", "memo"])
    ('transactions', [])
    >>> table_for_header(["loan_id", "account_id", "amount", "ts"])
    (None, ['disbursements', 'repayments'])
    >>> table_for_header(["disbursement_id", "loan_id", "account_id", "amount", "ts"])
    ('disbursements', [])
    """
    have = {n.strip().lower() for n in names}
    fits = []
    for name, t in TABLES.items():
        need = {c.name for c in t.required_columns if c.name not in t.derived}
        if need <= have:
            fits.append((len(have & set(t.column_names)), name))
    if not fits:
        return None, []
    best = max(n for n, _ in fits)
    top = sorted(name for n, name in fits if n == best)
    return (top[0], []) if len(top) == 1 else (None, top)


def header_names(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file (empty when it cannot be read)."""
    try:
        if path.suffix.lower() == ".parquet":
            return pl.scan_parquet(path).collect_schema().names()
        if path.suffix.lower() in (".csv", ".txt", ".psv", ".tsv", ""):
            sep = "\t" if path.suffix.lower() == ".tsv" else detect_delimiter(path)
            return pl.scan_csv(path, separator=sep, infer_schema=False, n_rows=0).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError):
        return []
    return []


def _parquet_text(name: str, dtype: pl.DataType, money: bool) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            col = col.dt.convert_time_zone("UTC")
        # cut to whole milliseconds towards the past (also before 1970), as the text rules do
        return col.dt.cast_time_unit("us").dt.truncate("1ms").dt.strftime(_ISO_MS).alias(name)
    if isinstance(dtype, pl.Date):
        return col.dt.strftime("%Y-%m-%d").alias(name)
    if money and dtype in (pl.Float32, pl.Float64):
        return (col.cast(pl.Utf8) + pl.lit(FLOAT_MARK)).alias(name)
    return col.cast(pl.Utf8).alias(name)


def read_text_frame(path: Path, table: str | None = None) -> pl.LazyFrame:
    """A CSV or Parquet file as a lazy frame of text columns (see the module docstring for
    Parquet's typed columns; ``table`` tells which columns hold money)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        lf = pl.scan_parquet(path)
        with _read_errors(str(path), "Parquet"):
            schema = lf.collect_schema()
        money = {c.name for c in TABLES[table].columns if c.kind == "money"} if table in TABLES else set()
        return lf.select([_parquet_text(n, d, n in money) for n, d in schema.items()])
    if suffix in (".csv", ".txt", ".psv", ".tsv") or suffix == "":
        sep = "\t" if suffix == ".tsv" else detect_delimiter(path)
        return pl.scan_csv(path, separator=sep, infer_schema=False, encoding="utf8")
    raise IngestError(f"{path}: unsupported file type {suffix!r} (use CSV or Parquet)")



@contextlib.contextmanager
def _read_errors(source: str, table: str) -> Iterator[None]:
    """A file polars cannot read becomes an IngestError naming it (and nothing is loaded)."""
    try:
        yield
    except pl.exceptions.NoDataError:
        raise IngestError(f"{source}: empty file (a {table} file needs at least a header row)") from None
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = ""
        if "utf-8" in first.lower() or "utf8" in first.lower():
            hint = " — the file is not UTF-8 text; convert it first (e.g. iconv -f GBK -t UTF-8)"
        elif "parquet" in source.lower() and ("cast" in first.lower() or "nested" in first.lower()):
            hint = " — Parquet columns must be plain values (text, numbers, dates), not lists or structs"
        raise IngestError(f"{source}: cannot read as a {table} table: {first}{hint}") from None



def _check_header(lf: pl.LazyFrame, table: str, source: str) -> None:
    all_names = lf.collect_schema().names()
    # polars renames a repeated header "x" to "x_duplicated_0": which of them is meant?
    repeated = sorted({n.rsplit("_duplicated_", 1)[0] for n in all_names if "_duplicated_" in n})
    if repeated:
        raise IngestError(f"{source}: column(s) {', '.join(repeated)} appear more than once in the header")
    if any(not n.strip() for n in all_names):
        raise IngestError(f"{source}: a column of the header has no name")
    names = set(all_names)
    t = TABLES[table]
    missing = [c.name for c in t.required_columns if c.name not in names and c.name not in t.derived]
    if missing:
        raise IngestError(
            f"{source}: missing required column(s) {', '.join(missing)} for table {table}"
            f" (has: {', '.join(sorted(names))})"
        )



def expand_paths(paths: Iterable[Path], table: str | None) -> list[tuple[Path, str]]:
    """Files to ingest with their tables; folders are expanded (unknown files skipped)."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise IngestError(f"{p}: no such file or folder")
        files = sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p]
        for f in files:
            if f.name.startswith("."):
                continue
            name = table or table_for_file(f)
            tied: list[str] = []
            if name is None:
                name, tied = table_for_header(header_names(f))
            if name is None:
                if p.is_dir() and not tied:
                    continue
                because = f"its header fits {' and '.join(tied)} equally" if tied else "neither its name nor its header says"
                raise IngestError(
                    f"{f}: cannot tell which table this file holds ({because}); name it after a table "
                    f"({', '.join(TABLE_NAMES)}) or pass --table"
                )
            if name not in TABLES:
                raise IngestError(f"unknown table {name!r}; tables: {', '.join(TABLE_NAMES)}")
            out.append((f, name))
    if not out:
        raise IngestError("no table files found in " + ", ".join(str(p) for p in paths))
    return out
