"""The browser workbench: server-rendered pages (FastAPI + jinja2) and vendored assets.

:func:`mount_workbench` adds the pages at ``/`` and the static files at ``/static`` to a
FastAPI application (``flowgraph serve`` mounts it on its API); :func:`create_app` makes a
workbench-only application (tests, or a deployment without the API).

Pages: ``/`` sign-in, ``/alerts`` the queue, ``/alerts/{id}`` one alert with its case,
flow-back paths and the forward-flow graph, ``/alerts/{id}/evidence`` the bundle as a zip,
``/loans/{id}``, ``/accounts/{id}``, ``/dashboard``. Every page needs a session
(:mod:`flowgraph.web.auth`) and the permission of the CLI command it mirrors
(:data:`PAGE_COMMANDS`); data are masked by role exactly as in the CLI
(:func:`flowgraph.security.masking.mask_for`), and every request is appended to the
audit log. No page loads anything from outside the server: the Content-Security-Policy
allows only this origin.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from flowgraph.core.errors import AccessError, FlowgraphError, InvalidValue, NotFound
from flowgraph.investigate import cases
from flowgraph.security import access as acl
from flowgraph.security import audit, masking
from flowgraph.store.embedded import Store
from flowgraph.web import auth, views

STATIC = Path(__file__).with_name("static")

#: page → the CLI command whose permission it needs (see flowgraph.security.access.COMMANDS)
PAGE_COMMANDS = {
    "queue": "alerts list", "alert": "alerts show", "review": "alerts review", "assign": "alerts assign",
    "note": "alerts note", "evidence": "evidence write", "loan": "loan", "account": "account",
    "dashboard": "report",
}  # fmt: skip

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")  # fmt: skip

_env = Environment(loader=PackageLoader("flowgraph.web", "templates"), autoescape=select_autoescape(["html", "j2"]))


@dataclass
class Workbench:
    """What the pages share: the store folder, the sessions and the rule pack folder."""

    store_root: Path
    sessions: auth.Sessions
    rules_dir: Path | None = None
    audit: bool = True  # False when the host app's middleware audits every request

    @property
    def store(self) -> Store:
        return Store.open(self.store_root)

    def pack(self):
        from flowgraph.rules.pack import load_pack

        return load_pack(self.rules_dir)


class _Denied(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------ helpers
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _render(name: str, status: int = 200, **ctx) -> HTMLResponse:
    return _headers(HTMLResponse(_env.get_template(name).render(**ctx), status_code=status))


def _cookie(resp: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    resp.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")  # fmt: skip


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        raise _Denied(403, "cross-site request refused")


def _audit(wb: Workbench, actor: acl.Actor | None, command: str, args: list[str], outcome: str, code: int) -> None:
    if not wb.audit:
        return
    store = wb.store
    if not store.manifest_path.exists():
        return
    audit.append(store, {"user": actor.user if actor else None, "role": actor.role if actor else None,
                         "os_user": acl.os_login(), "command": f"web {command}", "args": args,
                         "outcome": outcome, "exit_code": code, "channel": "browser"})  # fmt: skip


def _shield(wb: Workbench, actor: acl.Actor, obj, *ids: str):
    """What ``actor`` may see of ``obj``: the CLI's masking (``masking.mask_for``)."""
    return masking.mask_for(actor, obj, wb.store, ids)


# ------------------------------------------------------------------ the router
def create_router(wb: Workbench) -> APIRouter:
    """The workbench pages on ``wb``'s store."""
    r = APIRouter(include_in_schema=False)

    def session_of(request: Request) -> tuple[acl.Actor, auth.Session] | None:
        s = wb.sessions.get(request.cookies.get(auth.COOKIE))
        if s is None:
            return None
        role = acl.load_users(wb.store).get(s.user, {}).get("role")
        if role is None:  # removed since signing in
            wb.sessions.end(request.cookies.get(auth.COOKIE))
            return None
        return acl.Actor(s.user, acl.os_login(), role, False), s

    def page(kind: str, request: Request, build, *, post: bool = False, args: list[str] | None = None):
        """Session, CSRF (POST), permission, audit and error pages around one page."""
        who = session_of(request)
        if who is None:
            if post:
                return _render("error.html.j2", 401, title="Signed out", message="Your session ended: sign in again.", user=None)
            return _headers(RedirectResponse("/?" + urlencode({"next": request.url.path}), status_code=303))
        actor, sess = who
        command = PAGE_COMMANDS[kind]
        args = args or [request.url.path]
        request.state.command, request.state.actor = f"web {command}", actor  # for a host app's audit
        try:
            if post:
                _same_origin(request)
            acl.check(command, actor)
            resp = build(actor, sess)
        except _Denied as e:
            _audit(wb, actor, command, args, "denied", 1)
            return _render("error.html.j2", e.status, title="Refused", message=str(e), user=actor, csrf=sess.csrf)
        except AccessError as e:
            _audit(wb, actor, command, args, "denied", 1)
            return _render("error.html.j2", 403, title="Access denied", message=str(e), user=actor, csrf=sess.csrf)
        except NotFound as e:
            _audit(wb, actor, command, args, "failed", 1)
            return _render("error.html.j2", 404, title="Not found", message=str(e).strip("'\""), user=actor, csrf=sess.csrf)
        except FlowgraphError as e:
            _audit(wb, actor, command, args, "failed", 1)
            return _render("error.html.j2", 400, title="Refused", message=str(e), user=actor, csrf=sess.csrf)
        _audit(wb, actor, command, args, "ok", 0)
        return resp

    def check_csrf(sess: auth.Session, token: str | None) -> None:
        if not auth.same_token(sess.csrf, token):
            raise _Denied(403, "the form expired or did not come from this workbench (CSRF token mismatch): reload the page")

    # -------------------------------------------------------------- sign-in
    @r.get("/", response_class=HTMLResponse)
    def home(request: Request, next: str | None = None):
        request.state.command = "web home"
        who = session_of(request)
        if who is not None:
            actor, _ = who
            return _headers(RedirectResponse("/alerts" if actor.may("investigate") else "/dashboard", status_code=303))
        token = auth.secrets.token_urlsafe(32)
        resp = _render("signin.html.j2", csrf=token, next=_safe_next(next), error=None, user=None)
        _cookie(resp, request, auth.SIGNIN_COOKIE, token, max_age=3600)
        return resp

    @r.post("/signin")
    def signin(request: Request, user: str = Form(""), password: str = Form(""),
               csrf: str = Form(""), next: str = Form("")):  # fmt: skip
        if not auth.same_token(request.cookies.get(auth.SIGNIN_COOKIE), csrf):
            return _render("signin.html.j2", 403, csrf=request.cookies.get(auth.SIGNIN_COOKIE) or "", next=_safe_next(next),
                           error="The sign-in form expired: try again.", user=None)  # fmt: skip
        store = wb.store
        request.state.command, request.state.user = "web signin", user or None
        actor = None if wb.sessions.locked_out(user) else auth.check_credentials(store, user, password)
        if actor is None:
            wb.sessions.failed(user)
            _audit(wb, acl.Actor(user, acl.os_login(), None, False) if user else None, "signin", [user], "denied", 1)
            return _render("signin.html.j2", 401, csrf=csrf, next=_safe_next(next),
                           error="Wrong user name or password (or too many attempts: wait 15 minutes).", user=None)  # fmt: skip
        token, _ = wb.sessions.create(actor.user)
        _audit(wb, actor, "signin", [actor.user], "ok", 0)
        resp = RedirectResponse(_safe_next(next) or "/", status_code=303)
        _cookie(resp, request, auth.COOKIE, token)
        resp.delete_cookie(auth.SIGNIN_COOKIE, path="/")
        return _headers(resp)

    @r.post("/signout")
    def signout(request: Request, csrf: str = Form("")):
        request.state.command = "web signout"
        who = session_of(request)
        if who is not None:
            request.state.actor = who[0]
        if who is not None and auth.same_token(who[1].csrf, csrf):
            wb.sessions.end(request.cookies.get(auth.COOKIE))
            _audit(wb, who[0], "signout", [who[0].user], "ok", 0)
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(auth.COOKIE, path="/")
        return _headers(resp)

    # -------------------------------------------------------------- alerts
    @r.get("/alerts", response_class=HTMLResponse)
    def alert_queue(request: Request):
        def build(actor, sess):
            data = views.queue(wb.store, dict(request.query_params))
            data["rows"] = _shield(wb, actor, data["rows"])
            return _render("queue.html.j2", user=actor, csrf=sess.csrf, **data)

        return page("queue", request, build)

    @r.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_view(request: Request, alert_id: str):
        def build(actor, sess):
            data = views.alert_page(wb.store, alert_id, wb.pack())
            aid = data["alert"]["alert_id"]
            for n in data["graph"]["nodes"]:
                n["data"]["href"] = f"/alerts/{aid}/accounts/{n['data']['index']}"
            shown = _shield(wb, actor, {k: data[k] for k in ("alert", "flow", "graph")})
            users = sorted(acl.load_users(wb.store))
            return _render("alert.html.j2", user=actor, csrf=sess.csrf, users=users,
                           can_review=actor.may("review"), can_approve=actor.may("review.approve"),
                           can_evidence=actor.may("evidence"), **shown)  # fmt: skip

        return page("alert", request, build, args=[alert_id])

    @r.get("/alerts/{alert_id}/accounts/{index}", response_class=HTMLResponse)
    def alert_account(request: Request, alert_id: str, index: int):
        def build(actor, sess):
            acl.check("alerts show", actor)
            data = views.alert_page(wb.store, alert_id, wb.pack())
            return _account_page(wb, actor, sess, views.account_at(data, index))

        return page("account", request, build, args=[alert_id, str(index)])

    def case_action(kind: str, request: Request, alert_id: str, act, csrf: str):
        def build(actor, sess):
            check_csrf(sess, csrf)
            act(actor)
            return _headers(RedirectResponse(f"/alerts/{cases.resolve_alert(wb.store, alert_id)}", status_code=303))

        return page(kind, request, build, post=True, args=[alert_id])

    @r.post("/alerts/{alert_id}/review")
    def review(request: Request, alert_id: str, decision: str = Form(""), reason: str = Form(""), csrf: str = Form("")):
        return case_action("review", request, alert_id,
                           lambda a: cases.review(wb.store, alert_id, a.user, a.role, decision, reason), csrf)  # fmt: skip

    @r.post("/alerts/{alert_id}/assign")
    def assign(request: Request, alert_id: str, assignee: str = Form(""), csrf: str = Form("")):
        return case_action("assign", request, alert_id,
                           lambda a: cases.assign(wb.store, alert_id, assignee, a.user, a.role), csrf)  # fmt: skip

    @r.post("/alerts/{alert_id}/note")
    def add_note(request: Request, alert_id: str, text: str = Form(""), csrf: str = Form("")):
        return case_action("note", request, alert_id, lambda a: cases.note(wb.store, alert_id, text, a.user, a.role), csrf)

    @r.get("/alerts/{alert_id}/evidence")
    def evidence(request: Request, alert_id: str, unmasked: bool = False):
        def build(actor, sess):
            if unmasked and not actor.may("unmasked"):
                raise AccessError(f"access denied: role {actor.role} may not download unmasked evidence")
            return _evidence_zip(wb, cases.resolve_alert(wb.store, alert_id), unmasked, actor.user)

        return page("evidence", request, build, args=[alert_id] + (["--unmasked"] if unmasked else []))

    # -------------------------------------------------------------- loans, accounts, dashboard
    @r.get("/loans/{loan_id}", response_class=HTMLResponse)
    def loan_view(request: Request, loan_id: str):
        def build(actor, sess):
            from flowgraph.investigate.loans import loan_picture

            data = _shield(wb, actor, loan_picture(wb.store, loan_id, wb.pack()))
            return _render("loan.html.j2", user=actor, csrf=sess.csrf, data=data, loan_id=loan_id)

        return page("loan", request, build, args=[loan_id])

    @r.get("/accounts/{account_id}", response_class=HTMLResponse)
    def account_view(request: Request, account_id: str):
        return page("account", request, lambda actor, sess: _account_page(wb, actor, sess, account_id), args=[account_id])

    @r.get("/dashboard", response_class=HTMLResponse)
    def dashboard(request: Request):
        def build(actor, sess):
            return _render("dashboard.html.j2", user=actor, csrf=sess.csrf, **views.dashboard(wb.store))

        return page("dashboard", request, build)

    return r


def _account_page(wb: Workbench, actor, sess, account_id: str) -> HTMLResponse:
    from flowgraph.investigate.account import account_summary

    data = _shield(wb, actor, account_summary(wb.store, account_id), account_id)
    return _render("account.html.j2", user=actor, csrf=sess.csrf, data=data)


def _evidence_zip(wb: Workbench, alert_id: str, unmasked: bool, user: str) -> Response:
    from flowgraph.evidence.bundle import write_evidence

    tmp = Path(tempfile.mkdtemp(prefix="flowgraph-evidence-"))
    try:
        out = tmp / f"evidence-{alert_id}"
        write_evidence(wb.store, alert_id, out, pack=wb.pack(), unmasked=unmasked, generated_by=user)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(out.iterdir()):
                z.write(f, f"{out.name}/{f.name}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    resp = Response(buf.getvalue(), media_type="application/zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="evidence-{alert_id}.zip"'
    return _headers(resp)


def _safe_next(target: str | None) -> str:
    """Only a local path (never another site) may follow sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""


# ------------------------------------------------------------------ applications
def mount_workbench(app: FastAPI, store_root: str | Path, rules_dir: Path | None = None,
                    sessions: auth.Sessions | None = None, audit: bool = True) -> Workbench:  # fmt: skip
    """Add the workbench pages (``/``) and its static files (``/static``) to ``app``.

    ``audit=False`` when ``app`` already writes every request to the audit log: the pages
    then only set ``request.state.command`` (``web …``) and ``request.state.actor``."""
    wb = Workbench(Path(store_root), sessions or auth.Sessions(), rules_dir, audit)
    app.include_router(create_router(wb))
    app.mount("/static", StaticFiles(directory=STATIC), name="workbench-static")
    return wb


def create_app(store_root: str | Path, rules_dir: Path | None = None) -> FastAPI:
    """A FastAPI application serving only the workbench on a store."""
    app = FastAPI(title="flowgraph workbench", docs_url=None, redoc_url=None, openapi_url=None)
    mount_workbench(app, store_root, rules_dir)
    return app


__all__ = ["create_app", "mount_workbench", "create_router", "Workbench", "PAGE_COMMANDS", "InvalidValue"]
