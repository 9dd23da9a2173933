"""Fuzzing with hypothesis: CSV and Parquet ingest, rule-pack files, CLI arguments.

Properties: the user never sees a Python traceback (exit 0, 1 or 2 with a message; the
CLI's last-resort handler says "internal error", which counts as a failure here), and the
store is never partially written (after every run it verifies, and a failed ingest leaves
the manifest byte for byte as it was). Example counts are bounded so that the module runs
in about a minute on two cores; ``FUZZ_SCALE=10`` multiplies them for a longer session.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import RulePackError
from flowgraph.core.schema import TABLES
from flowgraph.rules.pack import load_pack
from flowgraph.store.embedded import Store

runner = CliRunner()
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
CASES = {"csv": 0, "parquet": 0, "rules": 0, "cli": 0}
KNOWN_HITS: dict[str, int] = {}
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=False, database=None)


# Known bugs the fuzzers should step over while they are being fixed (message prefixes).
KNOWN_INGEST: tuple[str, ...] = ()  # none left: read errors now name the file


def _no_traceback(r, known: tuple[str, ...] = ()) -> None:
    """The CLI ended the way a user should see: an exit code and no Python traceback."""
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.output[-2000:])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    flat = " ".join(r.stderr.split())
    if "internal error" in flat and any(k in flat for k in known):
        KNOWN_HITS[next(k for k in known if k in flat)] = KNOWN_HITS.get(next(k for k in known if k in flat), 0) + 1
        return
    assert "internal error" not in flat, r.stderr[-2000:]
    assert "Traceback" not in r.output


# ------------------------------------------------------------------ ingest input
TABLE_FILES = {"transactions": "transactions", "accounts": "accounts", "loans": "loans",
               "parties": "parties", "relations": "relations", "disbursements": "disbursements"}

cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "1.005", "1e9", "NaN", "inf", "2024-01-01", "2024-13-45T25:00",
                     "1704067200000", "99999999999999999999999", "self", "entrusted", "spouse", "\"", "\"\"",
                     "a\nb", "a,b", "a|b", "null", "None", "  padded  ", "٣", "１２", "\ufeff", "\x00"]),
    st.integers(-10**20, 10**20).map(str),
    st.decimals(allow_nan=True, allow_infinity=True, places=3).map(str),
)
huge = st.integers(10_000, 300_000).map(lambda n: "x" * n)


@st.composite
def csv_file(draw) -> tuple[str, bytes]:
    table = draw(st.sampled_from(sorted(TABLE_FILES)))
    known = TABLES[table].column_names
    names = draw(st.lists(st.one_of(st.sampled_from(known), st.text(max_size=8)), min_size=0, max_size=len(known) + 3))
    if draw(st.booleans()):  # mostly the real columns, possibly duplicated
        names = list(known) + names[:2]
    sep = draw(st.sampled_from([",", "|", ";", "\t"]))
    rows = draw(st.lists(st.lists(st.one_of(cell, huge) if draw(st.integers(0, 20)) == 0 else cell,
                                  min_size=0, max_size=len(names) + 2), max_size=8))
    buf = io.StringIO()
    buf.write(sep.join(names) + "\n" if names or draw(st.booleans()) else "")
    for r in rows:
        buf.write(sep.join(r) + draw(st.sampled_from(["\n", "\r\n", ""])))
    text = buf.getvalue()
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "gbk", "cp1252"]))
    data = text.encode(enc, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=400))
    suffix = draw(st.sampled_from([".csv", ".csv", ".csv", ".txt", ".psv", ".parquet"]))
    return f"{TABLE_FILES[table]}{suffix}", data


def _ingest_and_check(store: Path, path: Path, *extra: str) -> None:
    before = (store / "manifest.json").read_bytes()
    r = runner.invoke(app, ["--store", str(store), "ingest", str(path), *extra])
    _no_traceback(r, KNOWN_INGEST)
    if r.exit_code != 0:
        assert (store / "manifest.json").read_bytes() == before, r.stderr
    left = [p.name for p in store.rglob("*") if p.name.endswith(".tmp")]
    assert left == []
    assert Store(store).verify()["ok"]


@pytest.fixture(scope="module")
def fuzz_dir():
    d = Path(tempfile.mkdtemp(prefix="flowgraph-fuzz-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@settings(FUZZ, max_examples=50 * SCALE)
@given(f=csv_file())
def test_fuzz_csv_ingest(fuzz_dir, f):
    _fuzz_ingest(fuzz_dir, "csv", f)


def _fuzz_ingest(fuzz_dir: Path, kind: str, f: tuple[str, bytes]) -> None:
    """Ingest one generated file into the shared store of its kind, then check the result."""
    CASES[kind] += 1
    name, data = f
    store = fuzz_dir / f"{kind}-store"
    if not (store / "manifest.json").exists():
        Store.init(store)
    src = fuzz_dir / f"{kind}-in" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(data)
    _ingest_and_check(store, src)


def _column(draw, n: int) -> pl.Series:
    kind = draw(st.sampled_from(["int", "float", "str", "bool", "date", "datetime", "datetime_tz", "null", "list", "struct", "decimal", "binary"]))
    nulls = st.none() | st.nothing() if kind == "null" else st.none()
    if kind == "int":
        vals = draw(st.lists(st.integers(-(2**63), 2**63 - 1) | nulls, min_size=n, max_size=n))
        return pl.Series(vals, dtype=pl.Int64)
    if kind == "float":
        return pl.Series(draw(st.lists(st.floats() | nulls, min_size=n, max_size=n)), dtype=pl.Float64)
    if kind == "str":
        return pl.Series(draw(st.lists(cell | nulls, min_size=n, max_size=n)), dtype=pl.Utf8)
    if kind == "bool":
        return pl.Series(draw(st.lists(st.booleans() | nulls, min_size=n, max_size=n)), dtype=pl.Boolean)
    if kind == "date":
        return pl.Series(draw(st.lists(st.dates() | nulls, min_size=n, max_size=n)), dtype=pl.Date)
    if kind in ("datetime", "datetime_tz"):
        s = pl.Series(draw(st.lists(st.datetimes() | nulls, min_size=n, max_size=n)), dtype=pl.Datetime("us"))
        return s.dt.replace_time_zone("Asia/Shanghai", ambiguous="null", non_existent="null") if kind == "datetime_tz" else s
    if kind == "list":
        return pl.Series(draw(st.lists(st.lists(st.integers(-5, 5), max_size=3) | nulls, min_size=n, max_size=n)))
    if kind == "struct":
        return pl.Series([{"a": v} for v in draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))])
    if kind == "decimal":
        return pl.Series(draw(st.lists(st.decimals(-10**6, 10**6, places=2) | nulls, min_size=n, max_size=n)), dtype=pl.Decimal(12, 2))
    return pl.Series(draw(st.lists(st.binary(max_size=5) | nulls, min_size=n, max_size=n)), dtype=pl.Binary)


@st.composite
def parquet_file(draw) -> tuple[str, bytes]:
    table = draw(st.sampled_from(sorted(TABLE_FILES)))
    known = TABLES[table].column_names
    names = draw(st.lists(st.sampled_from(known) | st.text(min_size=1, max_size=6), min_size=1, max_size=len(known) + 2, unique=True))
    if draw(st.booleans()):
        names = list(dict.fromkeys([*known, *names]))
    n = draw(st.integers(0, 6))
    df = pl.DataFrame({c: _column(draw, n).alias(c) for c in names})
    buf = io.BytesIO()
    df.write_parquet(buf)
    data = buf.getvalue()
    cut = draw(st.sampled_from(["whole", "whole", "whole", "truncated", "flipped"]))
    if cut == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif cut == "flipped":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
    return f"{TABLE_FILES[table]}.parquet", data


@settings(FUZZ, max_examples=40 * SCALE)
@given(f=parquet_file())
def test_fuzz_parquet_ingest(fuzz_dir, f):
    _fuzz_ingest(fuzz_dir, "parquet", f)


def test_fuzz_named_ingest_cases(tmp_path):
    """The cases the issue names, each once: empty file, header only, duplicate headers,
    wrong delimiter, UTF-16, a 5 MB field, a folder with nothing in it."""
    store = tmp_path / "s"
    Store.init(store)
    cases = {
        "empty": b"",
        "header_only": b"tx_id,ts,src_account,dst_account,amount\n",
        "dup_header": b"tx_id,tx_id,ts,src_account,dst_account,amount\nt1,t2,2024-01-01,a,b,1\n",
        "semicolon": b"tx_id;ts;src_account;dst_account;amount\nt1;2024-01-01;a;b;1\n",
        "utf16": "tx_id,ts,src_account,dst_account,amount\nt1,2024-01-01,a,b,1\n".encode("utf-16"),
        "huge_field": b"tx_id,ts,src_account,dst_account,amount\nt1,2024-01-01,a," + b"b" * 5_000_000 + b",1\n",
        "quote": b'tx_id,ts,src_account,dst_account,amount\n"t1,2024-01-01,a,b,1\n',
    }
    for name, data in cases.items():
        d = tmp_path / name
        d.mkdir()
        (d / "transactions.csv").write_bytes(data)
        _ingest_and_check(store, d / "transactions.csv")
    (tmp_path / "nothing").mkdir()
    _ingest_and_check(store, tmp_path / "nothing")


# Files polars cannot read, found by the fuzzers: each must raise IngestError naming the
# file (they used to escape as polars errors).
INGEST_BUGS = {
    "empty_file": b"",
    "latin1": "tx_id,ts,src_account,dst_account,amount\nt1,2024-01-01,\u00e4,b,1\n".encode("latin-1"),
    "unbalanced_quote": b'tx_id,ts,src_account,dst_account,amount\n"t1,2024-01-01,a,b,1\n',
    "ragged_row": b"tx_id,ts,src_account,dst_account,amount\nt1,2024-01-01,a,b,1,5,6\n",
    "empty_column_name": b"tx_id,,ts,src_account,dst_account,amount\nt1,x,2024-01-01,a,b,1\n",
    "garbage_parquet": b"PAR1garbagePAR1",
    "list_column_parquet": "list",
}


@pytest.mark.parametrize("case", sorted(INGEST_BUGS))
def test_ingest_read_errors_name_the_file(tmp_path, case):
    from flowgraph.core.errors import IngestError
    from flowgraph.ingest.load import ingest_paths

    name = ("accounts" if case.startswith("list") else "transactions") + (".parquet" if case.endswith("parquet") else ".csv")
    src = tmp_path / name
    if INGEST_BUGS[case] == "list":  # a nested column where text is expected
        pl.DataFrame({"account_id": ["a"], "owner_id": ["p"], "status": [[1, 2]]}).write_parquet(src)
    else:
        src.write_bytes(INGEST_BUGS[case])
    with pytest.raises(IngestError, match=name):
        ingest_paths(Store.init(tmp_path / "s"), [src])


# ------------------------------------------------------------------ rule packs
SHIPPED = Path(load_pack().path)
toml_value = st.recursive(
    st.one_of(st.integers(-10**6, 10**20), st.floats(), st.booleans(), st.text(max_size=10),
              st.sampled_from(['"1000.00"', '"-5"', '"1.001"', "1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"]).map(lambda s: ("raw", s))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=3),
    max_leaves=6,
)


def _toml(v) -> str:
    if isinstance(v, tuple):
        return v[1]
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").encode("unicode_escape").decode().replace("\\\\", "\\") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"


@st.composite
def mutated_pack(draw) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(SHIPPED.glob("*.toml"))}
    name = draw(st.sampled_from(sorted(files)))
    text = files[name].decode()
    how = draw(st.sampled_from(["set", "set", "set", "add", "bytes", "drop_line", "garbage", "delete_file"]))
    lines = text.splitlines()
    if how in ("set", "drop_line") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        if how == "drop_line":
            del lines[i]
        elif "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {_toml(draw(toml_value))}"
        text = "\n".join(lines) + "\n"
        files[name] = text.encode()
    elif how == "add":
        section = draw(st.sampled_from(["", "[params]\n", "[score]\n", "[levels]\n", "[other]\n"]))
        key = draw(st.sampled_from(["window_days", "max_hops", "high", "base", "params", "score", "id", "zzz"]))
        files[name] = (text + f"\n{section}{key} = {_toml(draw(toml_value))}\n").encode()
    elif how == "bytes":
        data = bytearray(files[name])
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        files[name] = bytes(data)
    elif how == "garbage":
        files[name] = draw(st.binary(max_size=200))
    else:
        del files[name]
    return files


@settings(FUZZ, max_examples=150 * SCALE)
@given(files=mutated_pack())
def test_fuzz_rule_pack(fuzz_dir, files):
    """A mutated pack loads or fails with RulePackError — never another exception."""
    CASES["rules"] += 1
    d = fuzz_dir / "pack"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    for n, b in files.items():
        (d / n).write_bytes(b)
    try:
        pack = load_pack(d)
    except RulePackError as e:
        assert str(e)
        return
    for r in pack.rules:  # whatever loaded is usable: finite numbers, sane levels
        for v in r.params.values():
            if isinstance(v, float):
                assert v == v and abs(v) != float("inf"), (r.id, r.params)
        assert r.levels["medium"] <= r.levels["high"]


@settings(FUZZ, max_examples=20 * SCALE)
@given(files=mutated_pack())
def test_fuzz_rules_check_cli(fuzz_dir, files):
    CASES["rules"] += 1
    d = fuzz_dir / "pack-cli"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    for n, b in files.items():
        (d / n).write_bytes(b)
    r = runner.invoke(app, ["--store", str(fuzz_dir / "no-store"), "rules", "check", str(d)])
    _no_traceback(r)
    assert r.exit_code in (0, 2)


# ------------------------------------------------------------------ CLI arguments
# (cycles is left out: enumerating all cycles of the sample bank up to 12 hops takes minutes)
COMMANDS = ["trace", "paths", "account", "links", "history", "loan", "status", "report",
            "schema", "rules list", "rules show", "audit show", "audit verify", "users list", "index", "alerts",
            "evidence write", "evidence verify"]


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory) -> Path:
    from flowgraph.core.resources import samples_dir
    from flowgraph.ingest.load import ingest_paths

    root = tmp_path_factory.mktemp("fuzz-cli") / "store"
    ingest_paths(Store.init(root), [samples_dir()])
    assert runner.invoke(app, ["--store", str(root), "index"]).exit_code == 0
    return root


value = st.one_of(
    st.sampled_from(["L001", "L002", "A0174", "A0437", "P0665", "person:1", "0", "1", "-1", "2", "1000.00",
                     "1e400", "0.5", "-0.0", "nan", "2024-06-30", "2024-02-30", "9999-12-31", "1704067200000",
                     "", " ", "-", "--", "--json", "[red]x[/red]", "[/b]", "%s", "../../etc/passwd", "\u202e", "😀",
                     "0.2:3", "3:0.2", "a:b", "greedy", "maxflow", "high", "month", "branch"]),
    st.text(max_size=10),
    st.integers(-(2**70), 2**70).map(str),
)


@st.composite
def argv(draw, group, out_dir: Path) -> list[str]:
    import typer

    path = draw(st.sampled_from(COMMANDS))
    cmd = group
    for part in path.split():
        cmd = cmd.commands[part]
    args = path.split()
    params = [p for p in cmd.params if p.name not in ("help",)]
    for p in draw(st.lists(st.sampled_from(params), max_size=5)) if params else []:
        if isinstance(p, typer.core.TyperArgument) or not getattr(p, "opts", None) or not p.opts[0].startswith("-"):
            args += [draw(value) for _ in range(draw(st.integers(1, 2)))]
            continue
        opt = p.opts[0]
        if getattr(p, "is_flag", False):
            args.append(opt)
        elif opt in ("--out", "-o", "--rules", "--edges"):
            args += [opt, str(out_dir / draw(st.sampled_from(["o1", "o2", "missing/x"])))]
        else:
            args += [opt, draw(value)]
    return args


@settings(FUZZ, max_examples=45 * SCALE)
@given(data=st.data())
def test_fuzz_cli_arguments(cli_store, fuzz_dir, data):
    import typer

    CASES["cli"] += 1
    group = typer.main.get_command(app)
    args = data.draw(argv(group, fuzz_dir / "cli-out"))
    before = (cli_store / "manifest.json").read_bytes()
    r = runner.invoke(app, ["--store", str(cli_store), *args])
    _no_traceback(r)
    assert (cli_store / "manifest.json").read_bytes() == before


def test_zz_report_case_counts(capsys):
    """Prints how many fuzz cases ran (run with -s to see it)."""
    with capsys.disabled():
        print(f"\n[fuzz] cases: {CASES} total {sum(CASES.values())}; known-bug hits {KNOWN_HITS}")
    assert sum(CASES.values()) > 0


def test_markup_in_user_input_is_printed_verbatim(tmp_path):
    """Regression (found in review while writing the CLI fuzzer, whose value pool holds
    such strings): an id like ``[/b]`` quoted in an error message made rich raise
    MarkupError — a traceback — instead of printing the message."""
    from flowgraph.core.resources import samples_dir

    store = tmp_path / "s"
    from flowgraph.ingest.load import ingest_paths

    ingest_paths(Store.init(store), [samples_dir() / "accounts.csv"])
    r = runner.invoke(app, ["--store", str(store), "account", "[/b]"])
    _no_traceback(r)
    assert r.exit_code == 1 and "[/b]" in r.stderr
    pack = tmp_path / "pack"
    shutil.copytree(SHIPPED, pack)
    (pack / "large_outflow.toml").write_text((pack / "large_outflow.toml").read_text() + '\n"[/x]" = 1\n')
    r = runner.invoke(app, ["--store", str(store), "rules", "check", str(pack)])
    _no_traceback(r)
    assert r.exit_code == 2 and "[/x]" in r.stderr
