"""Where the shipped rule packs and sample data live (wheel or source checkout)."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]  # the flowgraph package folder


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def rules_dir() -> Path:
    """The shipped rule packs: ``flowgraph/_data/rules`` in a wheel, ``rules/`` in a checkout."""
    return _first_existing(_PKG / "_data" / "rules", _PKG.parent / "rules")


def samples_dir() -> Path:
    """The bundled sample dataset: ``flowgraph/_data/samples`` or ``data/samples/``."""
    return _first_existing(_PKG / "_data" / "samples", _PKG.parent / "data" / "samples")
