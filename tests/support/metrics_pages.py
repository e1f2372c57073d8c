"""Reading metrics pages and docs/metrics.md's table, for the metrics tests.

``table()`` is the table of docs/metrics.md by series name, ``dashboard_series()`` the lines of
``deploy/grafana/series.txt``, ``scrape(url)`` one page as the samples on the wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "metrics.md"
SERIES = ROOT / "deploy" / "grafana" / "series.txt"
Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    labels: tuple[str, ...]
    jobs: frozenset[str]
    meaning: str
    unit: str


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table() -> dict[str, Row]:
    """The rows of the table in docs/metrics.md, by series name."""
    rows: dict[str, Row] = {}
    lines = DOC.read_text().splitlines()
    start = lines.index("| series | type | labels | exposed by | meaning | unit |")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        name, kind, labels, jobs, meaning, unit = _cells(line)
        row = Row(
            name.strip("`"),
            kind,
            tuple(re.findall(r"`([^`]+)`", labels)),
            frozenset(j.strip() for j in jobs.split(",")),
            meaning,
            unit,
        )
        assert row.name not in rows, f"{row.name} twice in the table"
        rows[row.name] = row
    return rows


@dataclass(frozen=True)
class DashboardSeries:
    name: str  # as the table spells it: a histogram without _bucket
    kind: str
    jobs: frozenset[str]
    gpu_only: bool

    @property
    def sample(self) -> str:
        """The sample name the dashboards query."""
        return f"{self.name}_bucket" if self.kind == "histogram" else self.name


def dashboard_series() -> list[DashboardSeries]:
    """Each line of series.txt."""
    found = []
    for line in SERIES.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, jobs, kind, gpu, _meaning = line.split("\t")
        if kind == "histogram":
            name = name.removesuffix("_bucket")
        found.append(DashboardSeries(name, kind, frozenset(jobs.split(",")), gpu == "gpu"))
    return found


@dataclass
class Page:
    text: str
    values: dict[Key, float]

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over every series of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and wanted <= ls)

    def label_sets(self, name: str) -> list[set[str]]:
        return [{k for k, _ in ls} - {"le"} for n, ls in self.values if n == name]


SAMPLE = re.compile(r"([^{\s]+)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"')


def scrape(url: str) -> Page:
    """A page's samples by the names on the wire (prometheus_client's parser would rename TF's
    counters to ``..._total``); the page must also parse as Prometheus' text format."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, url
    assert response.headers["content-type"].startswith("text/plain"), url
    assert list(text_string_to_metric_families(response.text))
    values = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.fullmatch(line)
        assert match, line
        name, labels, value = match.groups()
        values[name, frozenset(LABEL.findall(labels or ""))] = float(value)
    return Page(response.text, values)


def predict_requests(page: str) -> float:
    """The Predict requests counted on a gateway's metrics page, summed over its labels."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith("tfsgate_requests_total{") and 'method="predict"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
