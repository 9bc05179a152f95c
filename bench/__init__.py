"""The benchmark (`python -m bench`) and the data-fidelity reconciliation (`bench/fidelity.py`):
the pipeline run as a user runs it, against a sandbox started here, measured and checked."""
