"""The flowgraph command line: one typer app, one module per command group.

``app`` (in :mod:`flowgraph.cli.app`) holds the global options, access control and the
audit line; importing the group modules registers their commands on it, in the order
``flowgraph --help`` lists them.
"""

from flowgraph.cli import (  # noqa: F401  (each registers its commands on the app)
    admin,
    data,
    engine,
    evidence,
    investigate,
    neo4j,
    reports,
    rules,
    workbench,
)
from flowgraph.cli.app import app

__all__ = ["app"]
