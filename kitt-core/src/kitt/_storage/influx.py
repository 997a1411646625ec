"""Stored runs as InfluxDB points (`kitt run --influx URL`, `kitt results influx`, and
kitt-web's `--influx`), for dashboards of history (docs/monitoring.md).

The wire format is InfluxDB's line protocol posted to `/write?db=DB` (the 1.x API, which
InfluxDB 2.x and 3.x serve too for compatibility). The URL names the server and the
database: `http://influx:8086/kitt`. Credentials never ride in the URL: an API token from
KITT_INFLUX_TOKEN (`Authorization: Token`), or KITT_INFLUX_USER and KITT_INFLUX_PASSWORD
(basic auth, InfluxDB 1.x).

Points: one `kitt_metric` per metric of each benchmark result, tagged with model, engine,
mode, suite, benchmark, params, metric, unit, fingerprint and run number (repetitions of
one run stay distinct series), with `value` and the run's id as fields; one `kitt_run`
per run. Every point carries the run's start time, so writing a run again replaces its
points instead of adding new ones.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from datetime import timezone
from typing import Any

import attrs

from kitt.errors import BadInput, KittError
from kitt.records import Run

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def _measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def _tag(value: str) -> str:
    # InfluxDB reads a backslash in a tag literally unless an escaped character follows,
    # so backslashes stay as they are; one at the very end would escape the separator
    # after it and cannot be written: it is dropped. A newline would end the line: it is
    # written as the two characters `\n`.
    return value.rstrip("\\").translate(_TAG)


def _field(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def line(measurement: str, tags: dict[str, str], fields: dict[str, Any], ns: int) -> str:
    """One point in line protocol. Empty tag values are left out (the protocol has no
    empty tag); tags are sorted, as InfluxDB recommends."""
    tag_text = "".join(f",{_tag(k)}={_tag(v)}" for k, v in sorted(tags.items()) if v != "")
    field_text = ",".join(f"{_tag(k)}={_field(v)}" for k, v in fields.items())
    return f"{_measurement(measurement)}{tag_text} {field_text} {ns}"


def influx_lines(run: Run) -> Iterator[str]:
    started = run.started_at if run.started_at.tzinfo else \
        run.started_at.replace(tzinfo=timezone.utc)  # stored naive means UTC
    ns = int(started.timestamp()) * 1_000_000_000 + started.microsecond * 1000
    common = {"model": run.model, "engine": run.engine.engine, "mode": run.engine.mode,
              "suite": run.suite, "fingerprint": run.hardware.fingerprint}
    duration = ((run.finished_at - run.started_at).total_seconds()
                if run.finished_at is not None else None)
    fields: dict[str, Any] = {"run_id": run.id, "benchmarks": len(run.results),
                              "passed": sum(1 for r in run.results if r.passed)}
    if duration is not None:
        fields["duration_s"] = float(duration)
    yield line("kitt_run", {**common, "status": run.status}, fields, ns)
    for result in run.results:
        params = json.dumps(result.params, sort_keys=True, separators=(",", ":")) \
            if result.params else ""
        for metric in result.metrics:
            if metric.value is None:
                continue
            yield line("kitt_metric", {
                **common, "benchmark": result.name, "params": params, "metric": metric.name,
                "unit": metric.unit, "run_number": str(result.run_number)},
                {"value": float(metric.value), "run_id": run.id,
                 "passed": bool(result.passed)}, ns)


@attrs.frozen
class Influx:
    """Where points go: the server's base URL and the database."""

    base_url: str
    database: str

    @classmethod
    def parse(cls, url: str) -> Influx:
        parts = urllib.parse.urlsplit(url)
        database = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"{url!r} is not an InfluxDB URL",
                           hint="give http(s)://HOST:PORT/DATABASE, e.g. "
                                "http://localhost:8086/kitt")
        if parts.username or parts.password or parts.query:
            raise BadInput("the InfluxDB URL holds credentials or a query",
                           hint="give only http(s)://HOST:PORT/DATABASE; credentials come from "
                                "KITT_INFLUX_TOKEN, or KITT_INFLUX_USER and KITT_INFLUX_PASSWORD")
        if not database or "/" in database:
            raise BadInput(f"{url!r} names no database",
                           hint="end the URL with the database: http://localhost:8086/kitt")
        return cls(f"{parts.scheme}://{parts.netloc}", database)

    def ping(self) -> None:
        """Raise BadInput unless the server answers (before a run, so that a wrong URL
        costs nothing)."""
        self._call("GET", "/ping", None, "reach InfluxDB")

    def write(self, points: Iterable[str], batch: int = 5000) -> int:
        """Send the points (in batches); how many were sent."""
        lines = list(points)
        query = urllib.parse.urlencode({"db": self.database, "precision": "ns"})
        for start in range(0, len(lines), batch):
            body = "\n".join(lines[start:start + batch]).encode()
            self._call("POST", f"/write?{query}", body, "write to InfluxDB")
        return len(lines)

    def _call(self, method: str, path: str, body: bytes | None, what: str) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"} if body is not None else {}
        headers.update(_credentials())
        request = urllib.request.Request(self.base_url + path, data=body, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30,
                                        context=ssl.create_default_context()) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()[:300]
            hint = ("check KITT_INFLUX_TOKEN, or KITT_INFLUX_USER and KITT_INFLUX_PASSWORD"
                    if exc.code in (401, 403) else
                    f"create the database first (CREATE DATABASE {self.database})"
                    if "database not found" in detail else "see InfluxDB's log")
            raise KittError(f"cannot {what} at {self.base_url}: HTTP {exc.code} {detail}",
                            hint=hint) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BadInput(f"cannot {what} at {self.base_url}: {reason}",
                           hint="check the --influx URL and that InfluxDB is running") from None


def _credentials() -> dict[str, str]:
    token = os.environ.get("KITT_INFLUX_TOKEN")
    if token:
        return {"Authorization": f"Token {token}"}
    user = os.environ.get("KITT_INFLUX_USER")
    if user:
        secret = f"{user}:{os.environ.get('KITT_INFLUX_PASSWORD', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(secret).decode()}
    return {}
