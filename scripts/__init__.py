"""Tools around the package, run from the repository root as modules: `python -m scripts.bench`.

A package (not loose files) so that the benchmark's modules import each other by name
(`from scripts.bench_common import ...`) without editing the import path; not installed with bertlab.
"""
