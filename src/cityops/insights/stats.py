"""Robust statistics on short series: median, MAD, the Theil–Sen line, robust z-scores, seasonal expectations and
level shifts. Pure functions on lists of floats (None = no value for that period); no database, no clock.

A series here is one value per period, oldest first, evenly spaced (a missing period is None). `season` is the
number of periods in a seasonal cycle (12 for months, 4 for quarters) or 0 when the series is judged against a
rolling window of recent periods only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

MAD_SCALE = 1.4826  # MAD × 1.4826 estimates the standard deviation of a normal distribution
Z_FLAG = 3.5  # |robust z| at or above this is flagged (Iglewicz & Hoaglin)
SHIFT_Z = 4.0  # a level shift: the medians differ by this many robust standard deviations …
SHIFT_EACH_Z = 2.5  # … and every value since its start is at least this far from the level before
RELATIVE_FLOOR = 0.02  # the robust spread is never taken below 2 % of the series' level
ABSOLUTE_FLOOR = 1e-6
MIN_HISTORY = 6  # values needed before a period to judge it against a rolling window
WINDOW = 12  # the rolling window's length (periods)
MIN_SEASONS = 2  # earlier values of the same season needed to judge a period against its season
SHIFT_MIN_AFTER = 3  # periods since a level shift before it is called one
SHIFT_MIN_BEFORE = 6  # periods before it to compare with
SHIFT_LOOKBACK = 12  # how far back a level shift's start is looked for


def mad(values: Sequence[float]) -> float:
    """The median absolute deviation from the median."""
    centre = median(values)
    return float(median(abs(value - centre) for value in values))


def spread(values: Sequence[float], level: float | None = None) -> float:
    """The robust standard deviation (1.4826 · MAD), floored at 2 % of the level so that a flat series does not
    make every small change infinitely unusual."""
    if level is None:
        level = median(abs(value) for value in values)
    return max(MAD_SCALE * mad(values), RELATIVE_FLOOR * abs(level), ABSOLUTE_FLOOR)


def theil_sen(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of the Theil–Sen line through (x, y) points: the median of the pairwise slopes and the
    median of y − slope·x. None with fewer than two distinct x."""
    slopes = [
        (y2 - y1) / (x2 - x1) for index, (x1, y1) in enumerate(points) for x2, y2 in points[index + 1 :] if x2 != x1
    ]
    if not slopes:
        return None
    slope = float(median(slopes))
    intercept = float(median(y - slope * x for x, y in points))
    return slope, intercept


@dataclass(frozen=True)
class Judged:
    """One period judged: what was expected there, the robust z-score, and whether the season was used."""

    index: int
    value: float
    expected: float
    score: float
    seasonal: bool


def _seasonal_centre(series: Sequence[float | None], index: int, season: int) -> float | None:
    earlier = [series[i] for i in range(index - season, -1, -season) if series[i] is not None]
    values = [float(value) for value in earlier if value is not None]
    return float(median(values)) if len(values) >= MIN_SEASONS else None


def seasonal_centres(series: Sequence[float | None], season: int) -> list[float | None]:
    """For each period, the median of the same season's earlier values (None with fewer than MIN_SEASONS)."""
    return [_seasonal_centre(series, index, season) if season else None for index in range(len(series))]


def judge_point(
    series: Sequence[float | None],
    index: int,
    season: int = 0,
    stop: int | None = None,
    centres: Sequence[float | None] | None = None,
) -> Judged | None:
    """A period's value against what the series before it leads to expect; None when there is too little data.

    With a season (and at least MIN_SEASONS earlier values of the same season), the expectation is the median of
    those values plus the recent year-on-year change (the median residual of the last `season` periods), and the
    spread is that of the residuals; otherwise the median and spread of the last WINDOW values. `stop` limits
    the history used to the periods before it (a level shift's start)."""
    value = series[index]
    if value is None:
        return None
    end = index if stop is None else min(index, stop)
    if season:
        if centres is None:
            centres = seasonal_centres(series, season)
        centre = centres[index]
        if centre is not None:
            residuals: list[float] = []
            for i in range(end):
                earlier_centre = centres[i]
                current = series[i]
                if earlier_centre is not None and current is not None:
                    residuals.append(current - earlier_centre)
            if len(residuals) >= MIN_HISTORY:
                recent = residuals[-season:]
                expected = centre + float(median(recent))
                scale = spread(residuals, level=centre)
                return Judged(index, float(value), expected, (value - expected) / scale, True)
    history = [float(v) for v in series[max(0, end - WINDOW) : end] if v is not None]
    if len(history) < MIN_HISTORY:
        return None
    expected = float(median(history))
    return Judged(index, float(value), expected, (value - expected) / spread(history), False)


@dataclass(frozen=True)
class Shift:
    """A sustained change of level: from `start` on, the series sits at `after` instead of `before`."""

    start: int
    before: float
    after: float
    score: float


def _deseasonalised(series: Sequence[float | None], season: int) -> list[float | None]:
    """Each value minus the median of the same season in earlier periods, where there are enough of them; when the
    season cannot be removed anywhere, the series itself."""
    if not season:
        return list(series)
    out: list[float | None] = []
    usable = False
    for index, value in enumerate(series):
        centre = _seasonal_centre(series, index, season)
        if value is not None and centre is not None:
            usable = True
        out.append(None if value is None or centre is None else value - centre)
    return out if usable and sum(v is not None for v in out) >= SHIFT_MIN_BEFORE + SHIFT_MIN_AFTER else list(series)


def level_shift(series: Sequence[float | None], season: int = 0) -> Shift | None:
    """The earliest start of a sustained change of level among the last SHIFT_LOOKBACK periods, or None.

    A start s qualifies when at least SHIFT_MIN_AFTER values follow it, at least SHIFT_MIN_BEFORE values precede
    it, the median after differs from the median of the (up to WINDOW) values before by SHIFT_Z robust standard
    deviations, and every value after is at least SHIFT_EACH_Z of them away on the same side: one spike is not a
    shift. A seasonal series is compared with its season removed."""
    values = _deseasonalised(series, season)
    present = [index for index, value in enumerate(values) if value is not None]
    if len(present) < SHIFT_MIN_BEFORE + SHIFT_MIN_AFTER:
        return None
    raw = [abs(float(v)) for v in series if v is not None]
    level = float(median(raw))
    last = len(values)
    for start in range(max(0, last - SHIFT_LOOKBACK), last - SHIFT_MIN_AFTER + 1):
        if values[start] is None:
            continue
        after = [float(v) for v in values[start:] if v is not None]
        before = [float(v) for v in values[max(0, start - WINDOW) : start] if v is not None]
        if len(after) < SHIFT_MIN_AFTER or len(before) < SHIFT_MIN_BEFORE:
            continue
        centre_before, centre_after = float(median(before)), float(median(after))
        scale = spread(before, level=level)
        score = (centre_after - centre_before) / scale
        if abs(score) < SHIFT_Z:
            continue
        sign = 1 if score > 0 else -1
        if all(sign * (value - centre_before) / scale >= SHIFT_EACH_Z for value in after):
            return Shift(start, centre_before, centre_after, score)
    return None


def flag(judged: Judged | None) -> bool:
    return judged is not None and abs(judged.score) >= Z_FLAG
