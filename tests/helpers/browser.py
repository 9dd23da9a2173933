"""Headless Chromium for the HTML report tests (evidence and portfolio reports)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not on PATH (Debian: apt-get install -y chromium)"
)


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium with the flags CI allows; console messages go to stderr."""
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "Uncaught" in ln or "ERROR:CONSOLE" in ln]


def dump_dom(html: Path, profile: Path) -> tuple[str, list[str]]:
    """(rendered DOM, console errors) of a local HTML file."""
    res = chromium(["--dump-dom", html.as_uri()], profile)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, console_errors(res.stderr)


def screenshot(html: Path, png: Path, profile: Path, size: str = "1400,1000") -> Path:
    res = chromium([f"--screenshot={png}", f"--window-size={size}", html.as_uri()], profile)
    assert png.exists(), res.stderr[-2000:]
    return png


def colours_and_spread(png: Path) -> tuple[int, float]:
    """(distinct colours, luminance variance): a blank or one-colour page has few and ~0."""
    img = Image.open(png).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 24) or []
    return len(colours), ImageStat.Stat(img.convert("L")).var[0]


def svg_page(svg: str, path: Path) -> Path:
    """A page holding one SVG only, to screenshot a graph or chart by itself."""
    path.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">{svg}</body></html>',
        encoding="utf-8",
    )
    return path


# ------------------------------------------------------------------ Playwright (the workbench)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]


def launch(playwright):
    """Debian's chromium driven by Playwright (never `playwright install`)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class LiveServer:
    """A uvicorn server for a FastAPI app on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, app):
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    def __enter__(self):
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
