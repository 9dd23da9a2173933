"""flowgraph's command line, runnable from a checkout: ``python cli.py --help``.

The commands live in the package (:mod:`flowgraph.cli`); the installed ``flowgraph``
script runs the same app. This file is not installed into site-packages.
"""

from flowgraph.cli import app

if __name__ == "__main__":  # pragma: no cover
    app()
