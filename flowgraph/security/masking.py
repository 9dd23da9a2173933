"""Masking of personal data: account and party ids, names, id numbers, phones, addresses.

One masking for every output: the CLI and API for roles without the ``unmasked``
permission, and evidence bundles unless written ``--unmasked``.

:func:`mask_id` keeps ``k`` characters at each end and stars
the middle, ``k`` = 4 for ids of 16+ characters, 3 for 12–15, 2 for 8–11, 1 for 4–7 and
0 (all stars) below 4, so at least a third of an id is always hidden::

>>> mask_id("6222020200001234")
'6222********1234'
>>> mask_id("A0054")
'A***4'
>>> mask_id("P12")
'***'

Masks that would collide inside one bundle get a suffix ``~1``, ``~2``… in the order of
the real ids (:func:`mask_map`), so distinct accounts stay distinct nodes; the same id
masks the same way in every file. Transaction, loan, alert and rule ids are not masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flowgraph.store.embedded import Store

MASK_RULE = (
    "account and party ids: keep k characters at each end, star the middle; k=4 for 16+ "
    "characters, 3 for 12-15, 2 for 8-11, 1 for 4-7, 0 below 4; colliding masks get ~1, ~2… "
    "in the order of the real ids"
)



# values under these keys are never masked (ids of non-persons, hashes, times, amounts)
KEEP_KEYS = frozenset({
    "tx_id", "alert_id", "loan_id", "rule_id", "rule_name", "kind", "rule_version", "ruleset_id",
    "ruleset_hash", "hash", "snapshot_id", "ts", "amount", "as_of", "scored_at", "disbursed_ts",
    "first_return_ts", "disbursed_amount", "returned_amount", "relation", "level", "source",
})



# ------------------------------------------------------------------ masking
def mask_id(s: str) -> str:
    """Star the middle of an id (see the module docstring for how much is kept)."""
    n = len(s)
    k = 4 if n >= 16 else 3 if n >= 12 else 2 if n >= 8 else 1 if n >= 4 else 0
    if k == 0:
        return "*" * n
    return s[:k] + "*" * (n - 2 * k) + s[-k:]



def mask_map(ids: Iterable[str]) -> dict[str, str]:
    """Real id → mask, unique inside the set (collisions numbered in real-id order).

    >>> mask_map(["A0054", "A0104", "B1"])
    {'A0054': 'A***4~1', 'A0104': 'A***4~2', 'B1': '**'}
    """
    groups: dict[str, list[str]] = {}
    for i in sorted(set(ids)):
        groups.setdefault(mask_id(i), []).append(i)
    out = {}
    for m, members in groups.items():
        if len(members) == 1:
            out[members[0]] = m
        else:
            out.update({real: f"{m}~{n}" for n, real in enumerate(members, 1)})
    return dict(sorted(out.items()))



def apply_mask(obj: Any, mapping: dict[str, str], key: str | None = None) -> Any:
    if not mapping:
        return obj
    pattern = _mask_pattern(mapping)
    return _mask_obj(obj, mapping, pattern, key)



def _mask_pattern(mapping: dict[str, str]) -> re.Pattern:
    alts = "|".join(re.escape(x) for x in sorted(mapping, key=lambda s: (-len(s), s)))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alts})(?![A-Za-z0-9_])")



def _mask_obj(obj, mapping, pattern, key=None):
    if isinstance(obj, dict):
        return {k: _mask_obj(v, mapping, pattern, k) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_mask_obj(v, mapping, pattern, key) for v in obj]
    if isinstance(obj, str) and key not in KEEP_KEYS:
        return pattern.sub(lambda m: mapping[m.group(0)], obj)
    return obj



# ------------------------------------------------------------------ gathering the data
def known_ids(store: Store) -> set[str]:
    """Account, owner and party ids of the store (what counts as a personal id)."""
    acc = store.read("accounts", ["account_id", "owner_id"])
    parties = store.read("parties", ["party_id"])
    return (
        set(acc["account_id"].drop_nulls().to_list())
        | set(acc["owner_id"].drop_nulls().to_list())
        | set(parties["party_id"].drop_nulls().to_list())
    )


#: values under these keys are personal data in any output
PERSONAL_KEYS = frozenset({"name", "id_number", "phone", "address"})



# ------------------------------------------------------------------ masking
_CANDIDATE = re.compile(r"[^\s,;()\[\]{}\"'<>=|→—]+")



def _found_ids(obj: Any, known: set[str], found: set[str], key: str | None = None) -> None:
    from flowgraph.security.masking import KEEP_KEYS

    if isinstance(obj, dict):
        for k, v in obj.items():
            _found_ids(v, known, found, k)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _found_ids(v, known, found, key)
    elif isinstance(obj, str) and key not in KEEP_KEYS:
        if obj in known:
            found.add(obj)
            return
        for tok in _CANDIDATE.findall(obj):
            for t in (tok, tok.rstrip(".:")):
                if t in known:
                    found.add(t)



def _mask_personal_keys(obj: Any, key: str | None = None) -> Any:
    from flowgraph.security.masking import mask_id

    if isinstance(obj, dict):
        return {k: _mask_personal_keys(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask_personal_keys(v, key) for v in obj]
    if isinstance(obj, str) and key in PERSONAL_KEYS:
        return mask_id(obj)
    return obj




def mask_personal(obj: Any, known: Iterable[str], extra: Iterable[str] = ()) -> Any:
    """``obj`` (JSON-like) with personal ids and attributes masked.

    Uses the evidence bundle's masking (:func:`flowgraph.security.masking.mask_map`): every
    account or party id of ``known`` found in a value, or ``extra`` id given by the
    caller, is replaced by its mask, unique within ``obj``; values under name, id_number,
    phone and address are masked whole. Keys are left alone (ids are never keys in CLI
    output). Transaction, loan, alert and rule ids stay in clear.

    >>> mask_personal({"src": "A0054", "dst": "B1", "tx_id": "A0054", "name": "Wang Wei"}, {"A0054", "B1"})
    {'src': 'A***4', 'dst': '**', 'tx_id': 'A0054', 'name': 'Wa****ei'}
    """
    from flowgraph.security.masking import apply_mask, mask_map

    known = set(known)
    found: set[str] = set(x for x in extra if x)
    _found_ids(obj, known, found)
    return _mask_personal_keys(apply_mask(obj, mask_map(found)))
