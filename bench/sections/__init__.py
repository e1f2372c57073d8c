"""The sections of ``make bench`` (``bench/run.py``), one module each, in the report's order; each
``run(bench, ...)`` adds its figures to ``bench.results``."""
