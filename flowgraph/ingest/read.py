"""TODO docstring."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from flowgraph.core.errors import IngestError
from flowgraph.core.schema import TABLE_NAMES, TABLES

_ALIASES = {name: (name, name.rstrip("s")) for name in TABLE_NAMES}



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



def read_text_frame(path: Path) -> pl.LazyFrame:
    """A CSV or Parquet file as a lazy frame of text columns (Parquet datetimes → epoch ms)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        lf = pl.scan_parquet(path)
        with _read_errors(str(path), "Parquet"):
            schema = lf.collect_schema()
        casts = []
        for name, dtype in schema.items():
            if isinstance(dtype, pl.Datetime):
                expr = pl.col(name).dt.replace_time_zone(None) if dtype.time_zone else pl.col(name)
                casts.append(expr.dt.epoch("ms").cast(pl.Utf8).alias(name))
            elif isinstance(dtype, pl.Date):
                casts.append(pl.col(name).cast(pl.Datetime("ms")).dt.epoch("ms").cast(pl.Utf8))
            else:
                casts.append(pl.col(name).cast(pl.Utf8))
        return lf.select(casts)
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
            if name is None:
                if p.is_dir():
                    continue
                raise IngestError(
                    f"{f}: cannot tell which table this file holds; name it after a table "
                    f"({', '.join(TABLE_NAMES)}) or pass --table"
                )
            if name not in TABLES:
                raise IngestError(f"unknown table {name!r}; tables: {', '.join(TABLE_NAMES)}")
            out.append((f, name))
    if not out:
        raise IngestError("no table files found in " + ", ".join(str(p) for p in paths))
    return out
