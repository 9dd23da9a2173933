"""The workbench in a real browser: Playwright driving Debian's chromium (headless).

Sign in, open an alert, the forward-flow graph is drawn on its canvas (non-blank pixels),
the time slider hides later transfers, clicking an account opens it, confirm as one
user and the second review as another changes the status; an analyst sees masked ids; a
regulator cannot open an alert. Every request the browser makes is intercepted: none may
leave 127.0.0.1. With FLOWGRAPH_DOCS_SCREENSHOTS=1 the main pages are saved as PNG in
docs/screenshots/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from flowgraph.investigate import cases
from flowgraph.web.app import create_app
from tests.helpers.browser import CHROMIUM, LiveServer, launch
from tests.web.conftest import PASSWORDS

REQUIRED = os.environ.get("FLOWGRAPH_REQUIRE_BROWSER") == "1"  # set by .ci/run: fail, never skip
if REQUIRED:
    import playwright.sync_api as playwright_api

    assert CHROMIUM, "chromium not on PATH (Debian: apt-get install -y chromium)"
else:
    playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not on PATH (Debian: apt-get install -y chromium)")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOTS = os.environ.get("FLOWGRAPH_DOCS_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def server(web_store):
    with LiveServer(create_app(web_store.root)) as live:
        yield live


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


class Session:
    """A browser context (its own cookies) that records every request it makes."""

    def __init__(self, browser, server):
        self.server = server
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.ctx.route("**/*", self._route)
        self.page = self.ctx.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        host = urlparse(url).hostname
        if url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def sign_in(self, user):
        self.page.goto(self.server.url + "/")
        self.page.fill("#user", user)
        self.page.fill("#password", PASSWORDS[user])
        self.page.click("#signin")
        self.page.wait_for_load_state("networkidle")

    def close(self):
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.errors == [], self.errors
        self.ctx.close()


def shot(page, name: str) -> None:
    if SHOTS:
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def painted_pixels(page) -> int:
    """Non-transparent pixels over the graph's canvases."""
    return page.evaluate("""() => {
        let n = 0;
        for (const c of document.querySelectorAll('#graph canvas')) {
            if (!c.width || !c.height) continue;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        }
        return n;
    }""")


def test_sign_in_review_with_a_second_reviewer(browser, server, web_store, flow_back_alert):
    ana = Session(browser, server)
    ana.page.goto(server.url + "/")
    assert ana.page.locator("#signin").is_visible()
    shot(ana.page, "signin")
    ana.sign_in("ana")
    assert ana.page.url.endswith("/alerts")
    assert ana.page.locator("#queue tbody tr").count() > 1
    shot(ana.page, "queue")
    ana.page.goto(f"{server.url}/alerts/{flow_back_alert}")
    ana.page.wait_for_function("() => window.flowgraphGraph && window.flowgraphGraph.nodes().length > 0")
    ana.page.wait_for_timeout(300)  # one animation frame for the canvas
    assert painted_pixels(ana.page) > 500
    n_edges = ana.page.evaluate("() => window.flowgraphGraph.edges().length")
    assert n_edges >= 1
    shot(ana.page, "alert")
    # the time slider: at t0 no transfer has happened yet
    ana.page.eval_on_selector("#time-slider", "s => { s.value = s.min; s.dispatchEvent(new Event('input')); }")
    assert ana.page.evaluate("() => window.flowgraphGraph.edges('.hidden-by-time').length") == n_edges
    ana.page.wait_for_function("() => window.flowgraphGraph.edges(':visible').length === 0")  # after a frame
    ana.page.eval_on_selector("#time-slider", "s => { s.value = s.max; s.dispatchEvent(new Event('input')); }")
    assert ana.page.evaluate("() => window.flowgraphGraph.edges('.hidden-by-time').length") == 0
    ana.page.wait_for_function(f"() => window.flowgraphGraph.edges(':visible').length === {n_edges}")
    # first review
    ana.page.check("#decision-confirm")
    ana.page.fill("#reason", "money back at the spouse within days")
    ana.page.click("#review-submit")
    ana.page.wait_for_load_state("networkidle")
    assert ana.page.inner_text("#case-status") == "pending_second_review"
    # the same user cannot give the second review
    ana.page.check("#decision-confirm")
    ana.page.fill("#reason", "me again")
    ana.page.click("#review-submit")
    assert "four eyes" in ana.page.inner_text("#problem")
    # a click on an account of the graph opens it
    ana.page.goto(f"{server.url}/alerts/{flow_back_alert}")
    ana.page.wait_for_function("() => window.flowgraphGraph && window.flowgraphGraph.nodes().length > 0")
    box = ana.page.locator("#graph").bounding_box()
    pos = ana.page.evaluate("() => window.flowgraphGraph.nodes()[0].renderedPosition()")
    with ana.page.expect_navigation():
        ana.page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    assert re.search(r"/alerts/[0-9a-f]+/accounts/0$", ana.page.url)
    assert "*" in ana.page.inner_text("#account-id")  # the analyst sees a masked id
    ana.errors = [e for e in ana.errors if "403" not in e]  # the refused review answered 403
    ana.close()

    rita = Session(browser, server)
    rita.sign_in("rita")
    rita.page.goto(f"{server.url}/alerts/{flow_back_alert}")
    rita.page.check("#decision-confirm")
    rita.page.fill("#reason", "agreed: returned through two companies")
    rita.page.click("#review-submit")
    rita.page.wait_for_load_state("networkidle")
    assert rita.page.inner_text("#case-status") == "confirmed"
    assert "agreed: returned" in rita.page.inner_text("#reviews")
    assert cases.case_of(web_store, flow_back_alert)["status"] == "confirmed"
    rita.page.goto(server.url + "/dashboard")
    assert rita.page.locator("#dispositions").is_visible()
    shot(rita.page, "dashboard")
    loan = web_store.read("loans", ["loan_id"])["loan_id"][0]
    rita.page.goto(f"{server.url}/loans/{loan}")
    shot(rita.page, "loan")
    rita.close()


def test_masking_by_role_in_the_browser(browser, server, web_store, flow_back_alert):
    accounts = set(web_store.read("accounts", ["account_id"])["account_id"].to_list())
    for user, masked in (("ana", True), ("rita", False)):
        s = Session(browser, server)
        s.sign_in(user)
        s.page.goto(f"{server.url}/alerts/{flow_back_alert}")
        text = s.page.inner_text("main")
        clear = {a for a in accounts if re.search(rf"(?<![\w*]){re.escape(a)}(?![\w*~])", text)}
        labels = s.page.evaluate("() => window.flowgraphGraph.nodes().map(n => n.data('label'))")
        if masked:
            assert clear == set() and all("*" in x for x in labels)
        else:
            assert clear and not any("*" in x for x in labels)
        s.close()


def test_regulator_cannot_open_an_alert(browser, server, flow_back_alert):
    reg = Session(browser, server)
    reg.sign_in("reg")
    assert reg.page.url.endswith("/dashboard")
    resp = reg.page.goto(f"{server.url}/alerts/{flow_back_alert}")
    assert resp.status == 403 and "access denied" in reg.page.inner_text("#problem")
    reg.errors = [e for e in reg.errors if "403" not in e]
    reg.close()
