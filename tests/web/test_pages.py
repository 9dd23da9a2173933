"""The workbench over HTTP (FastAPI's TestClient): sign-in, sessions, CSRF, permissions,
masking, the four-eyes rule (403), evidence download, and no outside resources."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from fastapi.testclient import TestClient

from flowgraph.investigate import cases
from flowgraph.security import audit
from flowgraph.web.app import create_app
from tests.web.conftest import PASSWORDS


@pytest.fixture()
def app(web_store):
    return create_app(web_store.root)


def signed_in(app, user) -> TestClient:
    c = TestClient(app, base_url="http://127.0.0.1")
    r = c.get("/")
    token = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
    r = c.post("/signin", data={"user": user, "password": PASSWORDS[user], "csrf": token, "next": ""}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_root_serves_the_sign_in_page_with_safe_headers(app):
    c = TestClient(app)
    r = c.get("/")
    assert r.status_code == 200 and "Sign in" in r.text and 'type="password"' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/alerts", follow_redirects=False).status_code == 303  # no session: back to sign-in


def test_wrong_password_and_missing_csrf_are_refused(app):
    c = TestClient(app)
    token = csrf_of(c.get("/").text)
    r = c.post("/signin", data={"user": "ana", "password": "nope-nope-nope", "csrf": token})
    assert r.status_code == 401 and "Wrong user name or password" in r.text
    r = TestClient(app).post("/signin", data={"user": "ana", "password": PASSWORDS["ana"], "csrf": "forged"})
    assert r.status_code == 403


def test_session_cookie_is_http_only_and_strict(app):
    c = TestClient(app, base_url="http://127.0.0.1")
    token = csrf_of(c.get("/").text)
    r = c.post("/signin", data={"user": "ana", "password": PASSWORDS["ana"], "csrf": token}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("flowgraph_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert c.get("/", follow_redirects=False).headers["location"] == "/alerts"


def test_queue_filters_and_masking(app, web_store):
    ana, rita = signed_in(app, "ana"), signed_in(app, "rita")
    r = ana.get("/alerts")
    assert r.status_code == 200 and 'id="queue"' in r.text
    n_all = len(re.findall(r'class="alert-link"', r.text))
    high = ana.get("/alerts", params={"level": "high"}).text
    assert 0 < len(re.findall(r'class="alert-link"', high)) < n_all
    assert "lv-medium" not in high and "lv-low" not in high
    assert "No alert matches" in ana.get("/alerts", params={"status": "confirmed", "rule": "nope"}).text
    # account ids appear masked to an analyst, in clear to a risk manager
    accounts = set(web_store.read("accounts", ["account_id"])["account_id"].to_list())
    shown = lambda html: {a for a in accounts if re.search(rf"(?<![\w*]){re.escape(a)}(?![\w*~])", html)}  # noqa: E731
    assert shown(r.text) == set()
    assert shown(rita.get("/alerts").text)


def test_alert_page_regulator_and_unknown(app, flow_back_alert):
    ana = signed_in(app, "ana")
    r = ana.get(f"/alerts/{flow_back_alert}")
    assert r.status_code == 200 and 'id="graph-data"' in r.text and "Forward flow" in r.text
    assert ana.get(f"/alerts/{flow_back_alert[:10]}").status_code == 200  # a prefix works
    assert ana.get("/alerts/ffffffffffffffffffffffff").status_code == 404
    reg = signed_in(app, "reg")
    assert reg.get("/", follow_redirects=False).headers["location"] == "/dashboard"
    r = reg.get(f"/alerts/{flow_back_alert}")
    assert r.status_code == 403 and "access denied" in r.text
    assert reg.get("/alerts").status_code == 403
    assert reg.get("/dashboard").status_code == 200


def test_four_eyes_over_http(app, web_store, flow_back_alert):
    ana, al, rita = signed_in(app, "ana"), signed_in(app, "al"), signed_in(app, "rita")
    page = ana.get(f"/alerts/{flow_back_alert}").text
    url = f"/alerts/{flow_back_alert}/review"
    # no CSRF token: refused, nothing recorded
    assert ana.post(url, data={"decision": "confirm", "reason": "x"}).status_code == 403
    assert cases.case_of(web_store, flow_back_alert)["status"] == "new"
    r = ana.post(url, data={"decision": "confirm", "reason": "came back", "csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303
    assert cases.case_of(web_store, flow_back_alert)["status"] == "pending_second_review"
    # the same user again: 403
    page = ana.get(f"/alerts/{flow_back_alert}").text
    r = ana.post(url, data={"decision": "confirm", "reason": "me again", "csrf": csrf_of(page)})
    assert r.status_code == 403 and "four eyes" in r.text
    # another analyst has no 'review.approve': 403
    r = al.post(url, data={"decision": "confirm", "reason": "agree", "csrf": csrf_of(al.get(f"/alerts/{flow_back_alert}").text)})
    assert r.status_code == 403
    # a cross-site post: refused whatever the token
    token = csrf_of(rita.get(f"/alerts/{flow_back_alert}").text)
    r = rita.post(url, data={"decision": "confirm", "reason": "x", "csrf": token}, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    r = rita.post(url, data={"decision": "confirm", "reason": "agree", "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert cases.case_of(web_store, flow_back_alert)["status"] == "confirmed"
    logged = [json.loads(x) for x in (web_store.root / audit.LOG).read_text().splitlines()]
    web = [(x["user"], x["outcome"]) for x in logged if x["command"] == "web alerts review"]
    assert web[-2:] == [("rita", "denied"), ("rita", "ok")] and ("ana", "denied") in web
    assert audit.verify(web_store)["ok"]


def test_notes_assignment_and_graph_account_links(app, web_store, flow_back_alert):
    ana = signed_in(app, "ana")
    page = ana.get(f"/alerts/{flow_back_alert}").text
    r = ana.post(f"/alerts/{flow_back_alert}/note", data={"text": "<script>alert(1)</script>", "csrf": csrf_of(page)})
    assert r.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text  # escaped
    r = ana.post(f"/alerts/{flow_back_alert}/assign", data={"assignee": "rita", "csrf": csrf_of(page)})
    assert r.status_code == 200 and cases.case_of(web_store, flow_back_alert)["assignee"] == "rita"
    r = ana.get(f"/alerts/{flow_back_alert}/accounts/0")
    assert r.status_code == 200 and 'id="account-id"' in r.text
    assert ana.get(f"/alerts/{flow_back_alert}/accounts/999").status_code == 404


def test_evidence_zip_masked_unless_allowed(app, flow_back_alert):
    ana = signed_in(app, "ana")
    r = ana.get(f"/alerts/{flow_back_alert}/evidence")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(n.endswith("manifest.json") for n in names) and any(n.endswith("report.html") for n in names)
    assert ana.get(f"/alerts/{flow_back_alert}/evidence", params={"unmasked": "true"}).status_code == 403
    assert signed_in(app, "aud").get(f"/alerts/{flow_back_alert}/evidence", params={"unmasked": "true"}).status_code == 200


def test_no_page_loads_anything_from_outside(app, flow_back_alert, web_store):
    ana = signed_in(app, "ana")
    loan = web_store.read("loans", ["loan_id"])["loan_id"][0]
    pages = ["/alerts", f"/alerts/{flow_back_alert}", "/dashboard", f"/loans/{loan}"]
    for path in pages:
        html = ana.get(path).text
        refs = re.findall(r'(?:src|href|action)="([^"]*)"', html)
        assert refs, path
        outside = [u for u in refs if re.match(r"^(?:[a-z]+:)?//", u) or u.startswith(("http:", "https:"))]
        assert outside == [], (path, outside)
        for src in re.findall(r'src="([^"]+)"', html):
            assert ana.get(src).status_code == 200, src
    assert "cytoscape" in ana.get("/static/vendor/cytoscape.LICENSE").text.lower()


def test_signout_ends_the_session(app):
    ana = signed_in(app, "ana")
    page = ana.get("/alerts").text
    assert ana.post("/signout", data={"csrf": csrf_of(page)}, follow_redirects=False).status_code == 303
    assert ana.get("/alerts", follow_redirects=False).status_code == 303


def test_vendored_assets_match_the_pinned_npm_version():
    import json
    from pathlib import Path

    from flowgraph.web.app import STATIC

    pinned = json.loads((Path(__file__).parents[2] / "tools" / "web-assets" / "package.json").read_text())
    versions = json.loads((STATIC / "vendor" / "VERSIONS.json").read_text())
    assert versions["cytoscape"]["version"] == pinned["dependencies"]["cytoscape"]
    head = (STATIC / "vendor" / "cytoscape.min.js").read_text()[:400]
    assert "Cytoscape Consortium" in head and (STATIC / "vendor" / "cytoscape.LICENSE").exists()
