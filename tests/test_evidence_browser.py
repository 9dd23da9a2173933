"""The evidence report in a real browser: headless Chromium, no console errors, every hop's
tx_id in the rendered DOM, and a graph that is not blank (skipped without chromium)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib

import polars as pl
import pytest

from flowgraph.batch import read_alerts
from flowgraph.evidence import write_evidence
from flowgraph.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not on PATH (Debian: apt-get install -y chromium)"
)


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Stdlib PNG decoder for 8-bit RGB/RGBA, non-interlaced: (width, height, channels, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert width is not None
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def _chromium(args: list[str], profile) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Report of the sample's flow-back alert with the most paths."""
    from flowgraph.batch import last_data_day, score_days
    from flowgraph.ingest import ingest_paths
    from flowgraph.resources import samples_dir
    from flowgraph.rulepack import load_pack

    base = tmp_path_factory.mktemp("browser")
    store = Store.init(base / "store")
    ingest_paths(store, [samples_dir()], None, None)
    score_days(store, [last_data_day(store)], load_pack(), None, None, None, True)
    df = read_alerts(store).filter(pl.col("kind") == "flow_back")
    alert = df.sort("path_count", "alert_id", descending=[True, False]).row(0, named=True)
    write_evidence(store, alert["alert_id"], base / "bundle", generated_by="pytest")
    return base, base / "bundle" / "report.html", alert


def test_dom_has_every_hop_and_no_console_errors(report):
    base, html, alert = report
    res = _chromium(["--dump-dom", html.as_uri()], base / "profile-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<svg" in dom and "flow-svg" in dom
    for p in alert["paths"]:
        for h in p["hops"]:
            assert h["tx_id"] in dom
    errors = [ln for ln in res.stderr.splitlines() if "Uncaught" in ln or "ERROR:CONSOLE" in ln]
    assert not errors, errors


def _distinct_and_spread(png: bytes) -> tuple[int, float]:
    w, h, ch, rows = decode_png(png)
    colours: set[bytes] = set()
    total = total_sq = n = 0
    for row in rows[:: max(1, h // 300)]:
        for x in range(0, w * ch, ch * 2):
            px = row[x : x + 3]
            colours.add(px)
            lum = px[0] + px[1] + px[2]
            total += lum
            total_sq += lum * lum
            n += 1
    mean = total / n
    return len(colours), total_sq / n - mean * mean


def test_screenshots_are_not_blank(report):
    base, html, _ = report
    shot = base / "page.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1400,1000", html.as_uri()], base / "profile-shot")
    assert shot.exists(), res.stderr[-2000:]
    colours, variance = _distinct_and_spread(shot.read_bytes())
    assert colours > 20 and variance > 100, (colours, variance)

    # the graph alone: a page holding only the report's SVG
    svg = re.search(r"<svg.*?</svg>", html.read_text(encoding="utf-8"), re.S).group(0)
    graph_page = base / "graph.html"
    graph_page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">{svg}</body></html>', encoding="utf-8")
    gshot = base / "graph.png"
    _chromium([f"--screenshot={gshot}", "--window-size=1400,1000", graph_page.as_uri()], base / "profile-graph")
    assert gshot.exists()
    colours, variance = _distinct_and_spread(gshot.read_bytes())
    assert colours > 10 and variance > 100, (colours, variance)
