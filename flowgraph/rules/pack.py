"""Rule packs: versioned TOML files in ``rules/<pack>/``, validated on load.

A pack is a folder with ``pack.toml`` (``id``, ``version``, ``description``) and one
``<rule>.toml`` per rule::

    id = "flow_back_self"            # unique in the pack
    name = "post_loan.flow_back.self"  # dotted name
    kind = "flow_back"               # which detector runs it
    version = "1.0.0"
    description = "..."
    enabled = true
    payment_modes = ["self"]         # loans it applies to (a loan without a mode counts as self)

    [params]                         # the detector's parameters (see ``flowgraph rules show``)
    window_days = 30

    [score]                          # score = base + Σ weight × feature, clipped to 0..100
    base = 20
    return_ratio = 50

    [levels]                         # score ≥ high → high, ≥ medium → medium, else low
    high = 70
    medium = 45

Anything unknown, of the wrong type or out of range is a :class:`RulePackError` naming
the file, the line and the key. The pack hash is the SHA-256 of every file of the pack
(names and bytes, in name order), recorded in every alert.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import tomllib
from dataclasses import field
from pathlib import Path
from typing import Any

from flowgraph.core.errors import RulePackError
from flowgraph.core.resources import rules_dir
from flowgraph.core.schema import PAYMENT_MODES
from flowgraph.core.values import parse_amount
from flowgraph.rules.kinds import KINDS
from flowgraph.rules.model import ParamSpec, Rule, RulePack, Suppression, specs_from_dataclass

RULE_KEYS = {"id", "name", "kind", "version", "description", "enabled", "payment_modes", "params", "score", "levels"}
PACK_KEYS = {"id", "version", "description", "suppress"}
SUPPRESS_KEYS = {"account", "category", "party", "reason", "rules"}


def kind_specs() -> dict[str, dict[str, ParamSpec]]:
    """Every rule kind → its parameter specs (from the kind's ``Params``)."""
    alerting = tuple(name for name, kind in KINDS.items() if kind.alerts is not None)
    return {name: specs_from_dataclass(kind.Params, alerting) for name, kind in KINDS.items()}


def score_features(kind: str) -> tuple[str, ...]:
    """The score features a rule of this kind may weigh."""
    return KINDS[kind].FEATURES


# ----------------------------------------------------------------- locating keys
def _line_of(text: str, table: str | None, key: str | None) -> int:
    """Best-effort line number of ``key`` in ``[table]`` (or of the table header)."""
    current = None
    header_line = 1
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[\s*([^\]]+?)\s*\]", line)
        if m:
            current = m.group(1)
            if current == table and key is None:
                return no
            if current == table:
                header_line = no
            continue
        if key and current == table and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return no
    return header_line


def _err(path: Path, text: str, table: str | None, key: str | None, msg: str) -> RulePackError:
    line = _line_of(text, table, key)
    where = ".".join(x for x in (table, key) if x)
    return RulePackError(f"{path}:{line}: {where or 'file'}: {msg}")


def _check_value(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """(normalised value, error or None)."""
    t = spec.type
    if t == "bool":
        return value, None if isinstance(value, bool) else "expected true or false"
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"expected an integer, got {value!r}"
        if not -(2**62) <= value < 2**62:  # kernels take int64; TOML allows up to 2**63 - 1
            return value, f"{value} is out of range"
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, f"expected a number, got {value!r}"
        value = float(value)
        if not math.isfinite(value):  # nan passes every range check; inf breaks int(window)
            return value, f"expected a finite number, got {value!r}"
    elif t == "money":
        if isinstance(value, bool) or not isinstance(value, str | int):
            return value, f"expected an amount as a string such as \"1000.00\", got {value!r}"
        try:
            value = parse_amount(str(value))
        except ValueError as e:
            return value, str(e)
    elif t == "str":
        if not isinstance(value, str):
            return value, f"expected a string, got {value!r}"
        if spec.choices and value not in spec.choices:
            return value, f"{value!r} is not one of {', '.join(spec.choices)}"
    elif t == "list[str]":
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return value, f"expected a list of strings, got {value!r}"
        if spec.choices:
            bad = [x for x in value if x not in spec.choices]
            if bad:
                return value, f"{', '.join(map(repr, bad))} not allowed (choose from {', '.join(spec.choices)})"
        value = tuple(value)
    elif t == "map":
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
        ):
            return value, f"expected a table of name = [\"...\", ...], got {value!r}"
        value = {str(k): tuple(v) for k, v in value.items()}
    if t in ("int", "float", "money"):
        if spec.min is not None and value < spec.min:
            return value, f"{value} is below the minimum {spec.min}"
        if spec.max is not None and value > spec.max:
            return value, f"{value} is above the maximum {spec.max}"
    return value, None


def _read_toml(path: Path) -> tuple[str, dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RulePackError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise RulePackError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulePackError(f"{path}: invalid TOML: {e}") from None


def _load_rule(path: Path, specs: dict[str, dict[str, ParamSpec]]) -> Rule:
    text, data = _read_toml(path)
    for key in data:
        if key not in RULE_KEYS:
            raise _err(path, text, None, key, f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    for key in ("id", "kind", "version"):
        if not isinstance(data.get(key), str) or not data.get(key):
            raise _err(path, text, None, key if key in data else None, f"required string '{key}' missing or empty")
    kind = data["kind"]
    if kind not in specs:
        raise _err(path, text, None, "kind", f"unknown kind {kind!r} (kinds: {', '.join(sorted(specs))})")
    spec = specs[kind]
    params = {name: s.default for name, s in spec.items()}
    for section in ("params", "score", "levels"):
        if not isinstance(data.get(section, {}), dict):
            raise _err(path, text, None, section, f"expected a table [{section}], got {data[section]!r}")
    for key, value in data.get("params", {}).items():
        if key not in spec:
            raise _err(path, text, "params", key, f"unknown parameter for kind {kind} (known: {', '.join(spec)})")
        value, problem = _check_value(spec[key], value)
        if problem:
            raise _err(path, text, "params", key, problem)
        params[key] = value
    features = score_features(kind)
    score = {f: 0.0 for f in features}
    for key, value in data.get("score", {}).items():
        if key not in features:
            raise _err(path, text, "score", key, f"unknown score feature (features of {kind}: {', '.join(features)})")
        value, problem = _check_value(ParamSpec(key, "float", 0.0, -100.0, 100.0), value)
        if problem:
            raise _err(path, text, "score", key, problem)
        score[key] = value
    levels = {"high": 70.0, "medium": 40.0}
    for key, value in data.get("levels", {}).items():
        if key not in levels:
            raise _err(path, text, "levels", key, "unknown level (levels: high, medium)")
        value, problem = _check_value(ParamSpec(key, "float", 0.0, 0.0, 100.0), value)
        if problem:
            raise _err(path, text, "levels", key, problem)
        levels[key] = value
    if levels["medium"] > levels["high"]:
        raise _err(path, text, "levels", "medium", "medium threshold above high threshold")
    modes = data.get("payment_modes", list(PAYMENT_MODES))
    _, problem = _check_value(ParamSpec("payment_modes", "list[str]", (), choices=PAYMENT_MODES), modes)
    if problem:
        raise _err(path, text, None, "payment_modes", problem)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _err(path, text, None, "enabled", "expected true or false")
    return Rule(
        id=data["id"], name=str(data.get("name", data["id"])), kind=kind, version=data["version"],
        description=str(data.get("description", "")).strip(), enabled=enabled,
        payment_modes=tuple(modes), params=params, score=score, levels=levels, path=str(path),
    )


def with_params(rule: Rule, params: dict[str, Any]) -> Rule:
    """The rule with some parameters changed, checked as the loader checks a pack's.

    >>> r = with_params(load_pack().rule("large_outflow"), {"ratio": 0.3, "min_amount": "10.00"})
    >>> r.params["ratio"], r.params["min_amount"]
    (0.3, 1000)
    >>> with_params(r, {"ratio": 2})
    Traceback (most recent call last):
    flowgraph.core.errors.RulePackError: large_outflow: params.ratio: 2.0 is above the maximum 1
    """
    spec = kind_specs()[rule.kind]
    new = dict(rule.params)
    for key, value in params.items():
        if key not in spec:
            raise RulePackError(f"{rule.id}: params.{key}: unknown parameter for kind {rule.kind} (known: {', '.join(spec)})")
        value, problem = _check_value(spec[key], value)
        if problem:
            raise RulePackError(f"{rule.id}: params.{key}: {problem}")
        new[key] = value
    return dataclasses.replace(rule, params=new)


def pack_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.toml")):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def load_pack(path: str | Path | None = None) -> RulePack:
    """Load and validate a rule pack folder (default: the shipped ``default`` pack)."""
    folder = Path(path) if path else rules_dir() / "default"
    if folder.is_file():
        folder = folder.parent
    manifest = folder / "pack.toml"
    if not manifest.exists():
        raise RulePackError(f"{folder}: not a rule pack (no pack.toml)")
    text, meta = _read_toml(manifest)
    for key in meta:
        if key not in PACK_KEYS:
            raise _err(manifest, text, None, key, f"unknown key (allowed: {', '.join(sorted(PACK_KEYS))})")
    for key in ("id", "version"):
        if not isinstance(meta.get(key), str):
            raise _err(manifest, text, None, key if key in meta else None, f"required string '{key}' missing")
    specs = kind_specs()
    rules = [_load_rule(p, specs) for p in sorted(folder.glob("*.toml")) if p.name != "pack.toml"]
    seen: dict[str, str] = {}
    for r in rules:
        if r.id in seen:
            raise RulePackError(f"{r.path}:1: id: duplicate rule id {r.id!r} (also in {seen[r.id]})")
        seen[r.id] = r.path
    if not rules:
        raise RulePackError(f"{folder}: the pack has no rules")
    return RulePack(
        id=meta["id"], version=meta["version"], description=str(meta.get("description", "")),
        rules=tuple(rules), hash=pack_hash(folder), path=str(folder),
        suppress=_suppressions(manifest, text, meta.get("suppress", []), rules),
    )


def _suppressions(path: Path, text: str, entries, rules: list[Rule]) -> tuple[Suppression, ...]:
    """The pack's ``[[suppress]]`` entries: one of account / category / party, a reason,
    optionally the rule ids or kinds they apply to."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _err(path, text, None, "suppress", "expected [[suppress]] tables")
    names = {r.id for r in rules} | set(KINDS)
    out = []
    for n, e in enumerate(entries, 1):
        where = f"suppress #{n}"
        unknown = set(e) - SUPPRESS_KEYS
        if unknown:
            raise _err(path, text, "suppress", None, f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(SUPPRESS_KEYS))})")
        given = [k for k in ("account", "category", "party") if e.get(k)]
        if len(given) != 1 or not all(isinstance(e[k], str) for k in given):
            raise _err(path, text, "suppress", None, f"{where}: exactly one of account, category, party (a string)")
        if not isinstance(e.get("reason"), str) or not e["reason"].strip():
            raise _err(path, text, "suppress", None, f"{where}: a reason is required")
        which = e.get("rules", [])
        if not isinstance(which, list) or not all(isinstance(x, str) and x in names for x in which):
            raise _err(path, text, "suppress", None, f"{where}: rules must list rule ids or kinds of the pack")
        out.append(Suppression(str(e.get("account", "")), str(e.get("category", "")), str(e.get("party", "")),
                               e["reason"].strip(), tuple(which)))  # fmt: skip
    return tuple(out)


def list_packs() -> list[str]:
    return sorted(p.name for p in rules_dir().iterdir() if (p / "pack.toml").exists())


__all__ = ["RulePack", "Rule", "RulePackError", "ParamSpec", "load_pack", "field"]
