"""bench/ab.py's summary line: medians per side, their ratio, and the rounds B came out lower."""

from __future__ import annotations

from bench.ab import Point, case_of, median_line


def test_median_line_reads_medians_ratio_and_rounds() -> None:
    a = Point(cpu_us=[100, 120, 110], p50_ms=[0.5, 0.6, 0.55], rps=[1000, 900, 950])
    b = Point(cpu_us=[90, 121, 99], p50_ms=[0.4, 0.5, 0.45], rps=[1100, 1000, 1050])
    line = median_line("rest 16 clients", a, b)
    assert line == (
        "rest 16 clients: CPU 110 -> 99 us/req (0.90x, lower in 2/3 rounds); p50 0.550 -> 0.450"
        " ms; 950 -> 1050 req/s"
    )


def test_cases_name_the_bench_models() -> None:
    assert case_of("half_plus_two", 0).model == "half_plus_two"
    assert case_of("mlp", 0).array.shape == (1, 1024)
    assert case_of("scale", 16384).array.shape == (1, 16384)
