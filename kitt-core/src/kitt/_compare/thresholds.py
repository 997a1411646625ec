"""Regression thresholds: the defaults, `--warn`/`--critical`, and per-metric rules from a
thresholds file (docs/reports.md)."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from pathlib import Path

import attrs

from kitt.errors import BadInput
from kitt.records import DIRECTIONS, Direction

DEFAULT_WARN_PCT = 5.0
DEFAULT_CRITICAL_PCT = 10.0


@attrs.frozen
class Threshold:
    """The effective rule for one metric: the percent change in the bad direction that
    warns and that is critical, and which direction is bad."""

    warn_pct: float = DEFAULT_WARN_PCT
    critical_pct: float = DEFAULT_CRITICAL_PCT
    direction: Direction = "neutral"


@attrs.frozen
class Rule:
    """One `metrics:` entry of a thresholds file; None fields fall back to the defaults."""

    pattern: str
    warn_pct: float | None = None
    critical_pct: float | None = None
    direction: Direction | None = None

    def matches(self, benchmark: str, metric: str) -> bool:
        return any(fnmatch.fnmatchcase(name, self.pattern)
                   for name in (metric, f"{benchmark}/{metric}"))

    @property
    def exact(self) -> bool:
        return not any(char in self.pattern for char in "*?[")


@attrs.frozen
class Thresholds:
    """Default thresholds plus per-metric rules. Precedence for each field: the metric's
    rule, then `--warn/--critical` (applied with `with_defaults`), then the file's top-level
    `warn`/`critical`, then 5% / 10%."""

    warn_pct: float = DEFAULT_WARN_PCT
    critical_pct: float = DEFAULT_CRITICAL_PCT
    rules: tuple[Rule, ...] = ()

    def with_defaults(self, warn_pct: float | None, critical_pct: float | None) -> Thresholds:
        for value, option in ((warn_pct, "--warn"), (critical_pct, "--critical")):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise BadInput(f"{option} must be a percentage >= 0, got {value}")
        if warn_pct is not None and critical_pct is not None and warn_pct > critical_pct:
            raise BadInput(f"--warn {warn_pct:g} is above --critical {critical_pct:g}",
                           hint="the warning threshold must not exceed the critical one")
        return attrs.evolve(
            self,
            warn_pct=self.warn_pct if warn_pct is None else warn_pct,
            critical_pct=self.critical_pct if critical_pct is None else critical_pct,
        )

    def rule_for(self, benchmark: str, metric: str) -> Rule | None:
        # An exact name beats any glob; globs apply in file order.
        matching = [rule for rule in self.rules if rule.matches(benchmark, metric)]
        exact = [rule for rule in matching if rule.exact]
        return (exact or matching or [None])[0]

    def for_metric(self, benchmark: str, metric: str, direction: Direction) -> Threshold:
        """The rule for `metric` of `benchmark`, whose stated direction is `direction`
        (a rule's `direction` overrides it)."""
        rule = self.rule_for(benchmark, metric) or Rule("")
        critical = self.critical_pct if rule.critical_pct is None else rule.critical_pct
        warn = self.warn_pct if rule.warn_pct is None else rule.warn_pct
        # A lone `critical: 3` under a default warn of 5 means "3 is critical": a warning
        # level above the critical one would never show, so it follows the critical one.
        return Threshold(warn_pct=min(warn, critical), critical_pct=critical,
                         direction=rule.direction or direction)


def load_thresholds(path: Path | str) -> Thresholds:
    """Read a thresholds file (docs/reports.md); errors name the file and line."""
    from kitt._util.yamlfile import load_yaml

    doc = load_yaml(path, what="thresholds file")
    top = doc.mapping(doc.data, field="(top level)")
    doc.only_keys(top, ("warn", "critical", "metrics"))

    def percent(node: Mapping, key: str, field: str) -> float | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            raise doc.error(f"expected a percentage >= 0, got {value!r}", node, key,
                            field=field, hint="write a number such as 5 (meaning 5%)")
        return float(value)

    def ordered(node: Mapping, warn: float | None, critical: float | None, field: str) -> None:
        if warn is not None and critical is not None and warn > critical:
            raise doc.error(f"warn {warn:g} is above critical {critical:g}", node, "warn",
                            field=field, hint="the warning threshold must not exceed critical")

    warn, critical = percent(top, "warn", "warn"), percent(top, "critical", "critical")
    ordered(top, warn, critical, "warn")
    rules = []
    metrics = doc.mapping(top.get("metrics"), field="metrics", parent=top, key="metrics")
    for pattern, entry in metrics.items():
        field = f"metrics.{pattern}"
        entry = doc.mapping(entry, field=field, parent=metrics, key=pattern)
        doc.only_keys(entry, ("warn", "critical", "direction"), field=field)
        direction = entry.get("direction")
        if direction is not None and direction not in DIRECTIONS:
            raise doc.error(f"expected one of {', '.join(DIRECTIONS)}, got {direction!r}",
                            entry, "direction", field=f"{field}.direction",
                            hint="higher: bigger is better; lower: smaller is better; "
                                 "neutral: never flag")
        rule = Rule(str(pattern), percent(entry, "warn", f"{field}.warn"),
                    percent(entry, "critical", f"{field}.critical"), direction)
        ordered(entry, rule.warn_pct, rule.critical_pct, field)
        rules.append(rule)
    return Thresholds(DEFAULT_WARN_PCT if warn is None else warn,
                      DEFAULT_CRITICAL_PCT if critical is None else critical, tuple(rules))
