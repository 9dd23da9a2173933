"""Rule packs: the shipped pack loads; bad packs fail naming file, line and key."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from flowgraph.cli import app
from flowgraph.core.errors import RulePackError
from flowgraph.core.resources import rules_dir
from flowgraph.rules.pack import load_pack

runner = CliRunner()
KINDS = {"flow_back", "repay_with_loan", "prohibited_destination", "rapid_pass_through",
         "large_outflow", "split_disbursement", "transfer_cycle", "classification"}


def test_default_pack_has_every_rule_kind():
    pack = load_pack()
    assert {r.kind for r in pack.rules} == KINDS
    fb = {r.id: r for r in pack.of_kind("flow_back")}
    assert set(fb) == {"flow_back_self", "flow_back_entrusted"}
    p = fb["flow_back_self"].params
    assert (p["window_days"], p["max_hops"], p["min_amount_ratio"], p["link_depth"]) == (30, 5, 0.1, 1)
    assert len(p["relation_types"]) == 12
    assert len(pack.hash) == 64


@pytest.fixture
def pack_copy(tmp_path):
    dst = tmp_path / "pack"
    shutil.copytree(rules_dir() / "default", dst)
    return dst


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _line(path, needle):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "old,new,key,words",
    [
        ("max_hops = 5", "max_hops = 50", "params.max_hops", "above the maximum"),
        ("max_hops = 5", 'max_hops = "5"', "params.max_hops", "expected an integer"),
        ("window_days = 30", "window_days = -1", "params.window_days", "below the minimum"),
        ("window_days = 30", "window_dayz = 30", "params.window_dayz", "unknown parameter"),
        ('min_amount = "0.00"', 'min_amount = "1.234"', "params.min_amount", "more than 2 decimals"),
        ('tracing = "greedy"', 'tracing = "fast"', "params.tracing", "not one of"),
        ("return_ratio = 50", "return_share = 50", "score.return_share", "unknown score feature"),
        ("high = 70", "high = 170", "levels.high", "above the maximum"),
        ('"spouse",', '"spouses",', "params.relation_types", "not allowed"),
    ],
)
def test_bad_values_name_file_line_and_key(pack_copy, old, new, key, words):
    path = pack_copy / "flow_back_self.toml"
    _edit(path, old, new)
    line = _line(path, new.split(" =")[0].strip() if "=" in new else new)
    with pytest.raises(RulePackError) as e:
        load_pack(pack_copy)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{line}: {key}: "), msg
    assert words in msg


def test_unknown_top_level_key_and_syntax_error(pack_copy):
    path = pack_copy / "flow_back_entrusted.toml"
    original = path.read_text()
    path.write_text("severity = 3\n" + original)
    with pytest.raises(RulePackError, match=r"flow_back_entrusted\.toml:1: severity: unknown key"):
        load_pack(pack_copy)
    path.write_text(original + "\nseverity = 3\n")  # at the end it belongs to [levels]
    with pytest.raises(RulePackError, match=r"flow_back_entrusted\.toml:\d+: levels\.severity: unknown level"):
        load_pack(pack_copy)
    path.write_text("id = \n")
    with pytest.raises(RulePackError, match="invalid TOML"):
        load_pack(pack_copy)


def test_hash_changes_with_any_byte(pack_copy):
    before = load_pack(pack_copy).hash
    _edit(pack_copy / "flow_back_self.toml", "high = 70", "high = 71")
    assert load_pack(pack_copy).hash != before


def test_rules_cli(pack_copy):
    r = runner.invoke(app, ["rules", "list", "--json"])
    assert r.exit_code == 0 and "flow_back_self" in r.stdout
    r = runner.invoke(app, ["rules", "show", "flow_back_self", "--json"])
    assert r.exit_code == 0 and '"window_days": 30' in r.stdout
    assert runner.invoke(app, ["rules", "check"]).exit_code == 0
    _edit(pack_copy / "flow_back_self.toml", "max_hops = 5", "max_hops = 0")
    r = runner.invoke(app, ["rules", "check", str(pack_copy)])
    assert r.exit_code == 2 and "params.max_hops" in r.stderr
