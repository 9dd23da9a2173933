"""Datasets of the issue #9 benchmark: generated banks at a given transaction count.

``flowgraph.generate`` has four scales (tiny 20k, small 500k, medium 10M, large 50M
transactions). The cost curve needs 1M, 10M and 50M at the same density (50
transactions per account), so a 1M scale is added here, inside the benchmark only, as one
more :class:`flowgraph.synthetic.generate.Scale` entry: 20,000 accounts, 1,000,000 transactions and
12 cases per typology (the generator is unchanged).

Generated data go to ``benchmarks/data/<name>-<seed>`` (gitignored) and are reused.
"""

from __future__ import annotations

import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

#: scale label → (generate scale name, Scale or None when generate already has it)
SCALE_OF = {"100k": "bench100k", "1M": "bench1M", "10M": "medium", "50M": "large"}


def _register() -> None:
    from flowgraph.synthetic.generate import SCALES, Scale

    SCALES.setdefault("bench100k", Scale(2_000, 100_000, 6))  # the Neo4j peer's small scale
    SCALES.setdefault("bench1M", Scale(20_000, 1_000_000, 12))


def generate_scale(label: str, seed: int = 0, data_root: Path = DATA) -> tuple[Path, dict]:
    """Generate the bank of scale ``label`` (``1M``, ``10M``, ``50M`` or a generate scale)
    into ``data_root/<scale>-<seed>`` unless it is there; return (folder, info)."""
    from flowgraph.synthetic.generate import generate

    _register()
    scale = SCALE_OF.get(label, label)
    out = data_root / f"{scale}-{seed}"
    info: dict = {"scale": scale, "seed": seed, "folder": str(out)}
    if (out / "labels.parquet").exists():
        info["reused"] = True
        return out, info
    t = time.perf_counter()
    res = generate(out, scale, seed)
    info["generate_seconds"] = round(time.perf_counter() - t, 1)
    info["tables"] = res["tables"]
    info["reused"] = False
    return out, info


if __name__ == "__main__":  # python -m benchmarks.datasets 1M 50M
    import json
    import resource
    import sys

    for lab in sys.argv[1:]:
        _, inf = generate_scale(lab)
        inf["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(inf), flush=True)
