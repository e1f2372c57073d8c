"""bench/ab.py: its summary line (medians per side, their ratio, the rounds B came out lower) and
its load points."""

from __future__ import annotations

from bench.ab import Point, case_of, median_line, points_of


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


def test_points_take_each_load_at_each_client_count_and_the_admin_calls_once() -> None:
    assert points_of("rest,grpc", "1,16") == [("rest", 1), ("grpc", 1), ("rest", 16), ("grpc", 16)]
    assert points_of("admin,rest", "1,16") == [("rest", 1), ("rest", 16), ("admin", 1)]
    assert points_of("admin", "1,16") == [("admin", 1)]
