"""Benchmarks: `python -m bench <suite> --out FILE` writes JSON figures compared across versions."""
