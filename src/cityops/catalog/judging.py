"""How a value is judged against its indicator: the target that applies, and the status every screen shows.

One rule for the overview, the boards, the wall and the off-target alert rule, so that no two screens disagree:
thresholds decide first (past the critical one: bad; past the warning one: watch), then a value short of its target
is watch; an indicator whose direction is neutral is judged only against a target (within 5 %: good). No value:
nodata; nothing to judge it by (no target, no threshold): none.
"""

from __future__ import annotations

from typing import Any

from cityops.catalog.models import Indicator

STATUSES = ("good", "watch", "bad", "nodata", "none")
NEUTRAL_TOLERANCE = 0.05


def target_of(indicator: Indicator, subject_code: str, year: int) -> tuple[float, int] | None:
    """The target for a subject and year, with the year it was set for: the subject's own, else the general one; of
    that year, else of the latest earlier year that has one. None when there is none."""
    best: tuple[int, int, float] | None = None  # (year, the subject's own?, value)
    for target in indicator.targets or []:
        target_year = int(target.get("year", 0))
        code = str(target.get("subject") or "")
        if target_year > year or code not in ("", subject_code):
            continue
        candidate = (target_year, int(bool(code)), float(target["value"]))
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return (best[2], best[0]) if best is not None else None


def target_for(indicator: Indicator, subject_code: str, year: int) -> float | None:
    """The target's value alone (see target_of); "" as the subject means the general target."""
    found = target_of(indicator, subject_code, year)
    return found[0] if found is not None else None


def judge(indicator: Indicator, value: float | None, target: float | None) -> str:
    """good, watch, bad, nodata (no value) or none (nothing to judge it by)."""
    if value is None:
        return "nodata"
    thresholds = indicator.thresholds or {}
    warning, critical = thresholds.get("warning"), thresholds.get("critical")
    lower_better = indicator.direction == "lower_better"

    def past(limit: Any) -> bool:
        if limit is None:
            return False
        return value > float(limit) if lower_better else value < float(limit)

    if indicator.direction in ("higher_better", "lower_better"):
        if past(critical):
            return "bad"
        if past(warning):
            return "watch"
        if target is not None and (value > target if lower_better else value < target):
            return "watch"
        return "good" if (target is not None or warning is not None or critical is not None) else "none"
    if target is not None:
        return "good" if abs(value - target) <= abs(target) * NEUTRAL_TOLERANCE else "watch"
    return "none"
