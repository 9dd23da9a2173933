"""Benchmarks: the ``python -m benchmarks`` runner (issue #9) and the older ``bench_*.py`` scripts."""
