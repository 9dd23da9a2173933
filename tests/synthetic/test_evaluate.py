"""`flowgraph evaluate` leaves no copy of the data behind unless asked to keep its store."""

from __future__ import annotations

import json
import re
import tempfile

import pytest
from typer.testing import CliRunner

import flowgraph.synthetic.evaluate as ev
from flowgraph.cli import app
from flowgraph.core.resources import samples_dir
from flowgraph.store.embedded import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A private temporary folder for tempfile, and a working folder without a store."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWGRAPH_STORE", raising=False)
    return d


def test_default_run_removes_its_store(scratch):
    r = invoke("evaluate", samples_dir(), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["store"] is None and res["recall_min"] == 1.0 and res["transactions"] == 20_000
    assert list(scratch.iterdir()) == []


def test_store_removed_when_scoring_fails(scratch, monkeypatch):
    seen = []

    def fail(store, *args, **kwargs):
        seen.append(store.root)
        assert store.root.is_relative_to(scratch) and store.manifest()["tables"]["transactions"]
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(ev, "score_days", fail)
    with pytest.raises(RuntimeError, match="scoring failed"):
        ev.evaluate(samples_dir())
    assert seen and not seen[0].exists()
    assert list(scratch.iterdir()) == []


def test_keep_keeps_the_store(scratch, tmp_path):
    keep = tmp_path / "kept"
    r = invoke("evaluate", samples_dir(), "--keep", keep, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["store"] == str(keep)
    assert Store.open(keep).read("transactions", ["tx_id"]).height == 20_000
    assert list(scratch.iterdir()) == []


def test_keep_refuses_a_folder_in_use(scratch, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    r = invoke("evaluate", samples_dir(), "--keep", used)
    assert r.exit_code == 2
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", r.stderr).split())  # rich's box, unwrapped
    assert "Invalid value for --keep" in text and "not a new or empty folder" in text
    assert [p.name for p in used.iterdir()] == ["notes.txt"]
