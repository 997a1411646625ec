"""Grafana dashboards as code. Every panel queries a series KITT exports: kitt-web's
/metrics (kitt_web.metrics) for the fleet overview, the `kitt_metric` and `kitt_run`
points (kitt.influx_lines) for the history; tests check each query against them."""

from __future__ import annotations

from typing import Any

_GRID_W = 12


def _panel(number: int, title: str, kind: str, datasource: dict[str, str],
           targets: list[dict[str, Any]], *, width: int = _GRID_W, height: int = 8,
           unit: str | None = None, description: str = "") -> dict[str, Any]:
    x = 0 if width == 24 else (number - 1) % 2 * _GRID_W
    panel: dict[str, Any] = {
        "id": number, "title": title, "type": kind, "datasource": datasource,
        "description": description,
        "gridPos": {"x": x, "y": (number - 1) // 2 * height, "w": width, "h": height},
        "targets": [{**target, "refId": chr(ord("A") + i), "datasource": datasource}
                    for i, target in enumerate(targets)],
    }
    if unit:
        panel["fieldConfig"] = {"defaults": {"unit": unit}, "overrides": []}
    return panel


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]],
               variables: list[dict[str, Any]] = (), time_from: str = "now-24h"
               ) -> dict[str, Any]:
    return {"uid": uid, "title": title, "tags": ["kitt"], "timezone": "utc",
            "schemaVersion": 39, "version": 1, "editable": False, "refresh": "30s",
            "time": {"from": time_from, "to": "now"}, "panels": panels,
            "templating": {"list": list(variables)}}


def fleet(prometheus_uid: str) -> dict[str, Any]:
    """Campaigns and the fleet, from kitt-web's /metrics."""
    ds = {"type": "prometheus", "uid": prometheus_uid}

    def prom(expr: str, legend: str = "") -> dict[str, Any]:
        return {"expr": expr, "legendFormat": legend}

    panels = [
        _panel(1, "Agents by status", "stat", ds, [prom("sum by (status) (kitt_agents)",
                                                         "{{status}}")]),
        _panel(2, "Jobs by state", "timeseries", ds, [prom("sum by (state) (kitt_jobs)",
                                                            "{{state}}")]),
        _panel(3, "Campaign progress", "bargauge", ds, [prom(
            "sum by (campaign, state) (kitt_campaign_entries)", "{{campaign}} {{state}}")]),
        _panel(4, "Runs stored by status", "timeseries", ds, [prom(
            "sum by (status) (kitt_runs)", "{{status}}")]),
        _panel(5, "Latest throughput per model and engine", "table", ds, [prom(
            'kitt_run_metric{benchmark="throughput"}', "{{model}} {{engine}} {{metric}}")],
            description="The latest stored run of each model, engine and fingerprint."),
        _panel(6, "Latest latency per model and engine", "table", ds, [prom(
            'kitt_run_metric{benchmark="latency"}', "{{model}} {{engine}} {{metric}}")]),
        _panel(7, "Hours since the latest run", "table", ds, [prom(
            "(time() - kitt_run_latest_timestamp_seconds) / 3600",
            "{{model}} {{engine}} {{fingerprint}}")], unit="h"),
        _panel(8, "API latency p95 by route", "timeseries", ds, [prom(
            "histogram_quantile(0.95, sum by (le, route) "
            "(rate(kitt_http_request_duration_seconds_bucket[5m])))", "{{route}}")],
            unit="s"),
        _panel(9, "API requests per second by status", "timeseries", ds, [prom(
            "sum by (status) (rate(kitt_http_request_duration_seconds_count[5m]))",
            "{{status}}")], unit="reqps"),
    ]
    return _dashboard("kitt-fleet", "KITT: fleet and campaigns", panels, time_from="now-6h")


def history(influx_uid: str) -> dict[str, Any]:
    """Every stored run over time, from InfluxDB: one metric, compared across models and
    engines."""
    ds = {"type": "influxdb", "uid": influx_uid}

    def tag_values(name: str, key: str, where: str = "") -> dict[str, Any]:
        query = f'SHOW TAG VALUES FROM "kitt_metric" WITH KEY = "{key}"{where}'
        return {"name": name, "label": name, "type": "query", "datasource": ds,
                "query": query, "definition": query, "refresh": 2, "includeAll": name
                != "metric", "multi": name != "metric", "current": {}}

    variables = [
        tag_values("benchmark", "benchmark"),
        tag_values("metric", "metric", ' WHERE "benchmark" =~ /^$benchmark$/'),
        tag_values("model", "model"),
        tag_values("engine", "engine"),
    ]
    filters = ('"benchmark" =~ /^$benchmark$/ AND "metric" =~ /^$metric$/ AND '
               '"model" =~ /^$model$/ AND "engine" =~ /^$engine$/')

    def influxql(query: str, result: str = "time_series") -> dict[str, Any]:
        return {"query": query, "rawQuery": True, "resultFormat": result}

    panels = [
        _panel(1, "$metric over time, by model and engine", "timeseries", ds, [influxql(
            f'SELECT mean("value") FROM "kitt_metric" WHERE {filters} AND $timeFilter '
            'GROUP BY time($__interval), "model", "engine" fill(none)')], width=24),
        _panel(2, "$metric by fingerprint", "barchart", ds, [influxql(
            f'SELECT last("value") FROM "kitt_metric" WHERE {filters} AND $timeFilter '
            'GROUP BY "fingerprint", "model", "engine"', "table")]),
        _panel(3, "Spread over runs and repetitions", "table", ds, [influxql(
            f'SELECT mean("value"), stddev("value"), count("value") FROM "kitt_metric" '
            f'WHERE {filters} AND $timeFilter GROUP BY "model", "engine", "fingerprint"',
            "table")]),
        _panel(4, "Runs", "table", ds, [influxql(
            'SELECT "run_id", "benchmarks", "passed", "duration_s", "status" FROM '
            '"kitt_run" WHERE "model" =~ /^$model$/ AND "engine" =~ /^$engine$/ AND '
            '$timeFilter', "table")], width=24),
    ]
    return _dashboard("kitt-history", "KITT: results over time", panels, variables,
                      time_from="now-90d")
