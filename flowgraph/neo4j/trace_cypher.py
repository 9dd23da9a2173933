"""``trace --cypher``: a Cypher statement that shows exactly the traced flow-back paths."""

from __future__ import annotations

from flowgraph.core.errors import InvalidValue


def cypher_string(value: str) -> str:
    """A Cypher string literal for ``value`` (single quotes, backslash escapes).

    >>> cypher_string("it's")
    "'it\\\\'s'"
    """
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
        .replace("\r", "\\r").replace("\t", "\\t")
    )
    return f"'{escaped}'"


def _path_matches(record: dict) -> list[str]:
    """``MATCH p = … RETURN p`` per path of a record (the disbursement edge when none)."""
    paths = record.get("paths") or []
    loan, disb = record.get("loan_id"), record.get("disbursement_id")
    parts = []
    for path in paths:
        hops = path["hops"] if isinstance(path, dict) else path
        pattern = "(:Account)" + "".join(
            f"-[:TRANSFER {{tx_id: {cypher_string(str(h['tx_id']))}}}]->(:Account)" for h in hops
        )
        parts.append(f"MATCH p = {pattern}\nRETURN p")
    if not parts:
        where = f" {{loan_id: {cypher_string(str(loan))}}}" if loan is not None else ""
        rel = f" {{disbursement_id: {cypher_string(str(disb))}}}" if disb is not None else ""
        parts.append(f"MATCH p = (:Loan{where})-[:DISBURSED_TO{rel}]->(:Account)\nRETURN p")
    return parts


def _comment(record: dict) -> str:
    text = (
        f"// flowgraph trace: loan {cypher_string(str(record.get('loan_id')))}, disbursement "
        f"{cypher_string(str(record.get('disbursement_id')))}, {len(record.get('paths') or [])} path(s)"
    )
    return text.replace("\n", " ").replace("\r", " ")  # a comment must stay on its line


def cypher_for_records(records: list[dict]) -> str:
    """One Cypher statement showing every flow-back path of several trace records.

    Parameters
    ----------
    records : list of dict
        Records of :func:`flowgraph.investigate.trace.trace_loans` (``paths`` → ``hops`` with
        ``tx_id``) or alert rows (same ``paths`` shape), e.g. a loan's disbursements.

    Returns
    -------
    str
        Paste into Neo4j Browser or Bloom: a comment line per record, then one
        ``MATCH p = …`` per path, each hop a ``TRANSFER`` relationship matched by its
        tx_id (served by the ``transfer_tx_id`` constraint's index), joined with
        ``UNION ALL``. A record without paths contributes its disbursement edge.
        One statement (no ``;``), so Bloom and Browser show everything in one result.

    Examples
    --------
    >>> print(cypher_for_records([{"loan_id": "L1", "disbursement_id": "D1",
    ...     "paths": [{"hops": [{"tx_id": "t1"}, {"tx_id": "t2"}]}]}]))
    // flowgraph trace: loan 'L1', disbursement 'D1', 1 path(s)
    MATCH p = (:Account)-[:TRANSFER {tx_id: 't1'}]->(:Account)-[:TRANSFER {tx_id: 't2'}]->(:Account)
    RETURN p
    """
    if not records:
        raise InvalidValue("no trace record to show")
    head = "\n".join(_comment(r) for r in records)
    parts = [m for r in records for m in _path_matches(r)]
    return head + "\n" + "\nUNION ALL\n".join(parts)


def cypher_for_trace(record: dict) -> str:
    """:func:`cypher_for_records` for one record (one disbursement or one alert)."""
    return cypher_for_records([record])


__all__ = ["cypher_for_records", "cypher_for_trace", "cypher_string"]
