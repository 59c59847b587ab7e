"""Benchmarks of DESIGN.md section 9 (W1 catalog-read, W2 order-place); run ``python -m bench``.

Each benchmark measures Storekeeper through a real server process and, in the same run on the
same machine, a ceiling for the same work; it prints both and their ratio and writes them as
JSON to ``bench/results/``.
"""
