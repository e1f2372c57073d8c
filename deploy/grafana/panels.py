"""Dashboard building blocks: panels numbered per dashboard, template variables, the common
dashboard frame and the label matchers the dashboards share."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import dashboard as dm

# Panels name the datasource through this variable: the provisioned Prometheus by default
# (provisioning/datasources/prometheus.yml gives it uid "prometheus"), any other one on import.
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
ALL = ".*"


class Panels:
    """Numbers panels and refs so every id is unique within a dashboard."""

    def __init__(self) -> None:
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _targets(
        self, panel: db.Panel | timeseries.Panel | stat.Panel, queries: list[tuple[str, str]]
    ) -> None:
        for index, (expr, legend) in enumerate(queries):
            panel.with_target(
                prometheus.Dataquery()
                .expr(expr)
                .legend_format(legend)
                .ref_id(chr(ord("A") + index))
                .datasource(DATASOURCE)
            )

    def graph(
        self,
        title: str,
        queries: list[tuple[str, str]],
        unit: str = "short",
        width: int = 12,
        description: str = "",
    ) -> timeseries.Panel:
        panel = (
            timeseries.Panel()
            .id(self._id())
            .title(title)
            .description(description)
            .datasource(DATASOURCE)
            .unit(unit)
            .min(0)
            .span(width)
            .height(8)
        )
        self._targets(panel, queries)
        return panel

    def stat(self, title: str, expr: str, unit: str = "short", width: int = 4) -> stat.Panel:
        panel = (
            stat.Panel()
            .id(self._id())
            .title(title)
            .datasource(DATASOURCE)
            .unit(unit)
            .span(width)
            .height(4)
        )
        self._targets(panel, [(expr, title)])
        return panel

    def row(self, title: str) -> db.Row:
        return db.Row(title).id(self._id())


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def label_variable(name: str, label: str, metric: str, matchers: str = "") -> db.QueryVariable:
    query = f"label_values({metric}{{{matchers}}}, {name if label == '' else label})"
    return (
        db.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(ALL)
        .current(dm.VariableOption(text="All", value="$__all"))
    )


def choice_variable(name: str, default: str, metric: str, model_matcher: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(name)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}{{{model_matcher}}}, label)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(text=default, value=default))
    )


def base(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["tfsgate"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
    )


MODEL = 'model=~"$model"'
VERSION = 'version=~"$version"'
LABEL = 'label=~"$label"'
# Triton's model label is "<tf model>" (its shared model), "<tf model>__.unbatched" or
# "<tf model>__<signature>" (tfsgate/core/naming.py); braces keep Grafana from reading "$model__".
TRITON_MODEL = 'model=~"${model}(__.+)?"'
NOT_OK = 'code!="OK"'
AVAILABLE = 'state="AVAILABLE"'
BOTH_ARMS = 'label=~"$baseline|$candidate"'
CONTROL_PLANE_JOB = 'job="tfsgate-control-plane"'
GATEWAY_JOB = 'job="tfsgate-gateway"'
ROLE_JOBS = 'job=~"tfsgate-.*|triton"'
