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
from collections.abc import Callable, Iterable
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



# ------------------------------------------------------------------ which ids are personal
#: values under these keys are account or party ids wherever they come from — masked even
#: when no table of the store lists them (an external counterparty such as EXTACC-77665544)
ID_KEYS = frozenset({
    "account", "account_id", "src", "dst", "src_account", "dst_account", "counterparty",
    "borrower_id", "owner_id", "party_id", "party", "party_a", "party_b", "owns",
})

#: values under these keys are personal data in any output, masked whole
PERSONAL_KEYS = frozenset({"name", "id_number", "phone", "address"})

# ids inside free text (reasons, chains, disbursement ids, cycle lines): runs of anything
# but spaces and punctuation that cannot be part of an id; ``party:29`` also as its parts
_CANDIDATE = re.compile(r"[^\s,;()\[\]{}\"'<>=|→—]+")


def known_ids(store: Store) -> set[str]:
    """Account and party ids the store's small tables name: accounts and their owners,
    parties, both sides of relations, borrowers, disbursement and repayment accounts.

    Transaction endpoints that no small table lists (external counterparties) are found
    by :func:`transaction_endpoints` when text mentions them, and under :data:`ID_KEYS`
    always."""
    ids: set[str] = set()
    for table, cols in (("accounts", ["account_id", "owner_id"]), ("parties", ["party_id"]),
                        ("relations", ["party_a", "party_b"]), ("loans", ["borrower_id"]),
                        ("disbursements", ["account_id"]), ("repayments", ["account_id"])):
        df = store.scan(table).select(cols).unique().collect()
        for c in cols:
            ids.update(df[c].drop_nulls().to_list())
    return ids


def transaction_endpoints(store: Store, candidates: Iterable[str]) -> set[str]:
    """The ``candidates`` that are a transaction's source or destination account."""
    import polars as pl

    cands = sorted(set(candidates))
    if not cands:
        return set()
    hit = (store.scan("transactions").select("src_account", "dst_account")
           .filter(pl.col("src_account").is_in(cands) | pl.col("dst_account").is_in(cands)).collect())
    return (set(hit["src_account"].to_list()) | set(hit["dst_account"].to_list())) & set(cands)


def _walk(obj: Any, found: set[str], texts: list[str], key: str | None = None) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, found, texts, k)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _walk(v, found, texts, key)
    elif isinstance(obj, str) and key not in KEEP_KEYS and key not in PERSONAL_KEYS:
        if key in ID_KEYS:
            if obj:
                found.add(obj)
        else:
            texts.append(obj)


def _tokens(text: str) -> set[str]:
    out = set()
    for tok in _CANDIDATE.findall(text):
        for t in (tok, tok.rstrip(".:"), *tok.split(":")):
            if t:
                out.add(t)
    return out


def id_mapping(
    obj: Any, known: Iterable[str], extra: Iterable[str] = (),
    endpoints: Callable[[set[str]], set[str]] | None = None,
) -> dict[str, str]:
    """Real id → mask for every account or party id in ``obj``: values under
    :data:`ID_KEYS`, ``extra`` ids (typed by the user), and ids inside other text that
    ``known`` lists or ``endpoints`` (a lookup of the remaining words, e.g.
    :func:`transaction_endpoints`) confirms.

    >>> id_mapping({"src": "EXTACC-77665544", "reasons": ["sent to EXTACC-77665544 and A0054"]}, {"A0054"})
    {'A0054': 'A***4', 'EXTACC-77665544': 'EXT*********544'}
    """
    found: set[str] = {x for x in extra if x}
    texts: list[str] = []
    _walk(obj, found, texts)
    known = known if isinstance(known, set | frozenset) else set(known)
    words: set[str] = set()
    for text in texts:
        if text in known or text in found:
            found.add(text)
            continue
        words |= _tokens(text)
    found |= words & known
    rest = words - found
    if endpoints is not None and rest:
        found |= endpoints(rest)
    return mask_map(found)


def _mask_personal_keys(obj: Any, key: str | None = None) -> Any:
    if isinstance(obj, dict):
        return {k: _mask_personal_keys(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask_personal_keys(v, key) for v in obj]
    if isinstance(obj, str) and key in PERSONAL_KEYS:
        return mask_id(obj)
    return obj


def mask_personal(
    obj: Any, known: Iterable[str], extra: Iterable[str] = (),
    endpoints: Callable[[set[str]], set[str]] | None = None,
) -> Any:
    """``obj`` (JSON-like) with personal ids and attributes masked.

    Every account or party id (:func:`id_mapping`) is replaced by its mask, unique within
    ``obj``, wherever it appears (a field, a reason, a chain, a disbursement id); values
    under name, id_number, phone and address are masked whole. Keys are left alone (ids
    are never keys in outputs). Transaction, loan, alert and rule ids stay in clear.

    >>> mask_personal({"src": "A0054", "dst": "B1", "tx_id": "A0054", "name": "Wang Wei"}, {"A0054", "B1"})
    {'src': 'A***4', 'dst': '**', 'tx_id': 'A0054', 'name': 'Wa****ei'}
    """
    return _mask_personal_keys(apply_mask(obj, id_mapping(obj, known, extra, endpoints)))


def mask_for(actor: Any, obj: Any, store: Store, typed: Iterable[str] = ()) -> Any:
    """What ``actor`` may see of ``obj``: unchanged with the ``unmasked`` permission, else
    :func:`mask_personal` with the store's ids (``typed``: ids the user gave, which the
    output repeats). No actor (nobody checked) means masked.

    The one call for the CLI and a server: ``mask_for(actor, record, store)``.
    """
    if actor is not None and actor.may("unmasked"):
        return obj
    return mask_personal(obj, known_ids(store), typed, lambda words: transaction_endpoints(store, words))
