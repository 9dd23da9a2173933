"""What a rule pack is, as plain data: rules, their parameter specs and levels.

The loader (:mod:`flowgraph.rules.pack`) builds these from TOML; detectors, scoring and
the batch read them. Kept free of any rule kind so that every layer above can import it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from flowgraph.core.errors import InvalidValue, NotFound

LEVELS = ("high", "medium", "low")  # alert levels, most severe first


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # int, float, bool, str, money, list[str]
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    doc: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    kind: str
    version: str
    description: str
    enabled: bool
    payment_modes: tuple[str, ...]
    params: dict[str, Any]
    score: dict[str, float]
    levels: dict[str, float]
    path: str

    def level_of(self, score: float) -> str:
        if score >= self.levels["high"]:
            return "high"
        if score >= self.levels["medium"]:
            return "medium"
        return "low"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Suppression:
    """A known benign counterparty: hits whose counterparty is this account, an account of
    this category, or an account of this party do not alert (they are counted).

    Exactly one of ``account``, ``category``, ``party`` is set; ``rules`` lists the rule ids
    or kinds it applies to (empty: every rule that honours suppression lists).

    >>> s = Suppression(category="utility", reason="bills", rules=("large_outflow",))
    >>> s.applies_to(Rule("lo", "lo", "large_outflow", "1", "", True, ("self",), {}, {}, {}, "")), s.what()
    (True, 'category utility')
    """

    account: str = ""
    category: str = ""
    party: str = ""
    reason: str = ""
    rules: tuple[str, ...] = ()

    def applies_to(self, rule: Rule) -> bool:
        return not self.rules or rule.id in self.rules or rule.kind in self.rules

    def what(self) -> str:
        for key in ("account", "category", "party"):
            if getattr(self, key):
                return f"{key} {getattr(self, key)}"
        return ""


@dataclass(frozen=True)
class RulePack:
    id: str
    version: str
    description: str
    rules: tuple[Rule, ...]
    hash: str
    path: str
    suppress: tuple[Suppression, ...] = ()

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise NotFound(f"no rule {rule_id!r} in pack {self.id} ({', '.join(r.id for r in self.rules)})")

    def of_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind and r.enabled]


# ----------------------------------------------------------------- parameter specs
ALERTING_KINDS = "alerting kinds"  # a `choices` placeholder: the kinds the nightly batch scores


def specs_from_dataclass(cls, alerting_kinds: tuple[str, ...] = ()) -> dict[str, ParamSpec]:
    """Parameter specs from a params dataclass: type from the annotation, range from metadata.

    A field whose ``choices`` is :data:`ALERTING_KINDS` gets ``alerting_kinds`` (the pack
    loader passes the registered kinds that write alerts), so a list of kind names is
    never written twice.
    """
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        kind = meta.get("type") or {int: "int", float: "float", bool: "bool", str: "str"}.get(hints[f.name])
        if kind is None:
            origin = typing.get_origin(hints[f.name])
            kind = "map" if origin is dict else "list[str]" if origin in (tuple, list) else "str"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        choices = alerting_kinds if meta.get("choices") == ALERTING_KINDS else meta.get("choices")
        out[f.name] = ParamSpec(
            f.name, kind, default, meta.get("min"), meta.get("max"),
            tuple(choices) if choices else None, meta.get("doc", ""),
        )
    return out


def param(default, lo=None, hi=None, doc="", **extra):
    """A params-dataclass field with its pack metadata (range, doc, ``type="money"``, …).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class P:
    ...     hops: int = param(5, 1, 12, "transfers on a path")
    >>> specs_from_dataclass(P)["hops"]
    ParamSpec(name='hops', type='int', default=5, min=1, max=12, choices=None, doc='transfers on a path')
    """
    meta = {"doc": doc, **extra}
    if lo is not None:
        meta["min"] = lo
    if hi is not None:
        meta["max"] = hi
    if isinstance(default, dict):  # a map parameter (name → list of names): a fresh dict each time
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_common_params(p) -> None:
    """The checks every detector's params share: windows, floors and path counts >= 0."""
    for f in ("window_days", "min_amount", "min_amount_ratio", "within_hours"):
        if getattr(p, f, 0) < 0:
            raise InvalidValue(f"{f} must be >= 0")
    if getattr(p, "max_paths", 0) < 0:
        raise InvalidValue("max_paths must be >= 0")
