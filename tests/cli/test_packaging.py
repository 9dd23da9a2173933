"""The wheel holds the package and its data, and no top-level module besides it."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot build the wheel here: {r.stderr.strip()[-300:]}")
    (path,) = out.glob("flowgraph-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_installs_only_the_flowgraph_package(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert tops == {"flowgraph", next(t for t in tops if t.endswith(".dist-info"))}
    assert "cli.py" not in wheel.namelist()  # a top-level `cli` would collide with other packages


def test_wheel_carries_templates_rule_packs_and_samples(wheel):
    names = set(wheel.namelist())
    assert "flowgraph/evidence/templates/report.html.j2" in names
    assert "flowgraph/investigate/templates/portfolio.html.j2" in names
    assert "flowgraph/_data/rules/default/pack.toml" in names
    assert "flowgraph/_data/samples/transactions.csv" in names


def test_entry_point_is_the_package_app(wheel):
    dist = next(n for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "flowgraph = flowgraph.cli:app" in wheel.read(dist).decode()


def test_wheel_carries_the_workbench_assets(wheel):
    """`pip install .` alone gives a working, offline workbench: pages, script, styles and
    the vendored graph library with its licence."""
    names = set(wheel.namelist())
    for f in ("templates/alert.html.j2", "templates/signin.html.j2", "static/workbench.js", "static/workbench.css",
              "static/vendor/cytoscape.min.js", "static/vendor/cytoscape.LICENSE"):
        assert f"flowgraph/web/{f}" in names, f
