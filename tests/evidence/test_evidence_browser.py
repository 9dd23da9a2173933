"""The evidence report in a real browser: headless Chromium, no console errors, every hop's
tx_id in the rendered DOM, and a graph that is not blank (skipped without chromium)."""

from __future__ import annotations

import re

import polars as pl
import pytest

from flowgraph.evidence.bundle import write_evidence
from flowgraph.rules.alerts import read_alerts
from flowgraph.store.embedded import Store
from tests.helpers.browser import colours_and_spread, dump_dom, needs_chromium, screenshot, svg_page

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Report of the sample's flow-back alert with the most paths."""
    from flowgraph.core.resources import samples_dir
    from flowgraph.ingest.load import ingest_paths
    from flowgraph.rules.batch import last_data_day, score_days
    from flowgraph.rules.pack import load_pack

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
    dom, errors = dump_dom(html, base / "profile-dom")
    assert "<svg" in dom and "flow-svg" in dom
    for p in alert["paths"]:
        for h in p["hops"]:
            assert h["tx_id"] in dom
    assert not errors, errors


def test_screenshots_are_not_blank(report):
    base, html, _ = report
    colours, variance = colours_and_spread(screenshot(html, base / "page.png", base / "profile-shot"))
    assert colours > 20 and variance > 100, (colours, variance)

    # the graph alone: a page holding only the report's SVG
    svg = re.search(r"<svg.*?</svg>", html.read_text(encoding="utf-8"), re.S).group(0)
    graph = svg_page(svg, base / "graph.html")
    colours, variance = colours_and_spread(screenshot(graph, base / "graph.png", base / "profile-graph"))
    assert colours > 10 and variance > 100, (colours, variance)
