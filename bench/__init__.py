"""Benchmarks: ``make bench`` (``bench/run.py``) and the report writer; run by hand, never timed in tests."""
