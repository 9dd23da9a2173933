"""Neo4j connection settings: explicit values (CLI options) over ``FLOWGRAPH_NEO4J_*``.

Nothing here talks to a server; :mod:`flowgraph.neo4j.store` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flowgraph.core.errors import Neo4jConfigError

#: URI schemes of the Bolt transport (the driver's HTTP transport is a preview: not used)
URI_SCHEMES: tuple[str, ...] = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
ENV_URI = "FLOWGRAPH_NEO4J_URI"
ENV_USER = "FLOWGRAPH_NEO4J_USER"
ENV_PASSWORD = "FLOWGRAPH_NEO4J_PASSWORD"
ENV_DATABASE = "FLOWGRAPH_NEO4J_DATABASE"


def redact_uri(uri: str) -> str:
    """``uri`` without user info, for messages (``bolt://u:pw@h:7687`` → ``bolt://h:7687``).

    >>> redact_uri("neo4j://neo4j:secret@db.example:7687")
    'neo4j://db.example:7687'
    """
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


@dataclass(frozen=True)
class Neo4jSettings:
    """Connection settings: explicit values (CLI options) over ``FLOWGRAPH_NEO4J_*``.

    The password is left out of ``repr`` so that it never reaches a log or traceback.
    """

    uri: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None

    @classmethod
    def resolve(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Neo4jSettings:
        """Settings from the arguments, each falling back to its environment variable.

        Raises
        ------
        Neo4jConfigError
            No URI, a URI whose scheme is not a Bolt one, or a user without a password
            (or the reverse).
        """
        env = os.environ if env is None else env
        uri = uri or env.get(ENV_URI) or None
        user = user or env.get(ENV_USER) or None
        password = password or env.get(ENV_PASSWORD) or None
        database = database or env.get(ENV_DATABASE) or None
        if not uri:
            raise Neo4jConfigError(
                f"no Neo4j URI: set {ENV_URI} (e.g. bolt://localhost:7687) or pass --neo4j-uri"
            )
        scheme = urlsplit(uri).scheme
        if scheme not in URI_SCHEMES or not urlsplit(uri).netloc:
            raise Neo4jConfigError(
                f"bad Neo4j URI {redact_uri(uri)!r}: expected {' | '.join(URI_SCHEMES)}://host[:port]"
            )
        if bool(user) != bool(password):
            missing = ENV_PASSWORD if user else ENV_USER
            raise Neo4jConfigError(f"Neo4j user and password go together: set {missing} (or pass it)")
        return cls(uri, user, password, database)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Neo4jSettings:
        """Settings from ``FLOWGRAPH_NEO4J_URI/_USER/_PASSWORD/_DATABASE`` only."""
        return cls.resolve(env=env)


__all__ = ["ENV_DATABASE", "ENV_PASSWORD", "ENV_URI", "ENV_USER", "URI_SCHEMES", "Neo4jSettings", "redact_uri"]
