"""Statistics of a metric over a run's repetitions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs


@attrs.frozen
class Stats:
    """A metric over a run's repetitions. `stddev` is the sample standard deviation (None
    for one value); `cv` is stddev / |mean| (None when undefined)."""

    n: int
    mean: float
    stddev: float | None
    cv: float | None
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no values")
        n = len(values)
        # Dividing first keeps the sum of values near 1e308 finite; d * d (unlike d ** 2)
        # gives inf instead of raising, and a non-finite spread is reported as unknown.
        mean = math.fsum(v / n for v in values)
        try:
            spread = math.fsum((v - mean) * (v - mean) for v in values)
        except OverflowError:  # the exact sum of squares is beyond floats (fsum raises)
            spread = math.inf
        stddev = finite(math.sqrt(spread / (n - 1))) if n > 1 else None
        if n > 1 and min(values) == max(values):
            stddev = 0.0  # not 2e-18 from the mean's rounding: equal values do not vary
        cv = finite(stddev / abs(mean)) if stddev is not None and mean != 0 else None
        return cls(n, mean, stddev, cv, min(values), max(values))


def finite(value: float) -> float | None:
    """None for inf/nan: JSON has no such numbers and a person can do nothing with them."""
    return value if math.isfinite(value) else None
