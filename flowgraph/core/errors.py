"""One tree of errors: every failure flowgraph reports to a person is a :class:`FlowgraphError`.

The command line (and the API) map them to exit codes (HTTP statuses) in one place:
``exit_code`` 1 for a failure, 2 for bad usage or configuration. Anything else that
escapes the library — a ``ValueError`` or ``KeyError`` from a bug — is an *internal*
error, reported as such with a way to see the traceback, never as the user's fault.

Each subclass names a stage; the message names the file, row and column (or the option,
the request field) and what to do.

>>> issubclass(StoreError, FlowgraphError), RulePackError.exit_code, StoreError.exit_code
(True, 2, 1)
"""

from __future__ import annotations


class FlowgraphError(Exception):
    """A failure reported to the user (exit code 1)."""

    exit_code = 1


class UsageError(FlowgraphError, ValueError):
    """Bad options or arguments (exit code 2)."""

    exit_code = 2


class InvalidValue(FlowgraphError, ValueError):
    """A value given by the user that cannot be parsed or is out of range (exit code 1).

    Also a ``ValueError``, so that callers parsing values keep catching it as one.
    """


class NotFound(FlowgraphError, KeyError):
    """An id the user gave that the store does not hold (loan, alert, rule, party)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreError(FlowgraphError):
    """A store that is missing, locked or damaged."""


class AuditError(StoreError):
    """The audit log was edited, cut or rewritten (tampering): commands stop until an admin
    restores it or starts a new chain with ``flowgraph audit restart`` (docs/security.md)."""


class IngestError(FlowgraphError):
    """A file that cannot be read at all (unknown table, missing required column, ...)."""


class RulePackError(FlowgraphError):
    """An invalid rule pack; the message names file, line and key (exit code 2)."""

    exit_code = 2


class AccessError(FlowgraphError):
    """The acting user may not do this; the message says who, what and which role would."""


class EvidenceError(FlowgraphError, ValueError):
    """An unknown target or an unusable bundle."""


class Neo4jStoreError(FlowgraphError):
    """Neo4j could not do what was asked (server down, auth, a failed statement)."""


class Neo4jUnavailableError(Neo4jStoreError):
    """The server cannot be reached (or stopped answering); nothing more was synced."""


class Neo4jConfigError(Neo4jStoreError):
    """Connection settings are missing or malformed (a usage error, exit code 2)."""

    exit_code = 2
