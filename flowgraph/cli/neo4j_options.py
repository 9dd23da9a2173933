"""Neo4j connection options shared by `neo4j`, `index --from-neo4j` and `score --write-neo4j`."""

from __future__ import annotations

from typing import Annotated

import typer

NeoUri = Annotated[str | None, typer.Option(
    "--neo4j-uri", envvar="FLOWGRAPH_NEO4J_URI", show_envvar=True,
    help="Neo4j Bolt URI, e.g. bolt://localhost:7687.")]



NeoUser = Annotated[str | None, typer.Option(
    "--neo4j-user", envvar="FLOWGRAPH_NEO4J_USER", show_envvar=True, help="Neo4j user.")]



NeoPassword = Annotated[str | None, typer.Option(
    "--neo4j-password", envvar="FLOWGRAPH_NEO4J_PASSWORD", show_envvar=True,
    help="Neo4j password (prefer the environment variable: options show in `ps`).")]



NeoDatabase = Annotated[str | None, typer.Option(
    "--neo4j-database", envvar="FLOWGRAPH_NEO4J_DATABASE", show_envvar=True,
    help="Database name (default: the server's default database).")]



def connect_neo4j(uri: str | None, user: str | None, password: str | None, database: str | None):
    """A checked Neo4j connection from the options (over the environment)."""
    from flowgraph.neo4j.settings import Neo4jSettings
    from flowgraph.neo4j.store import Neo4jStore

    neo = Neo4jStore.from_settings(Neo4jSettings.resolve(uri, user, password, database))
    try:
        neo.verify()  # one attempt: an unreachable server fails now, not after 30 s of retries
    except BaseException:
        neo.close()
        raise
    return neo
