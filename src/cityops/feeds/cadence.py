"""A feed's expected cadence, in words an agency agrees to, and the periods and deadlines it implies.

Accepted (English or Vietnamese, case and accents as typed; stored in the canonical English form):

    every 5 minutes · every 2 hours      mỗi 5 phút · mỗi 2 giờ      → one slot per interval, due at its end
    daily by 17:00                       hằng ngày trước 17h         → the day's figures, due that day at 17:00
    monthly by day 5                     hằng tháng trước ngày 5     → a month, due by the end of day 5 after it
    quarterly by day 10                  hằng quý trước ngày 10      → a quarter, due by the end of day 10 after it
    yearly by 31/01                      hằng năm trước 31/01        → a year, due by the end of the next 31 January
    each school year by 30 September     mỗi năm học trước 30/09     → a school year, due by the end of the next 30/09

Calendar days are local (Asia/Ho_Chi_Minh); "by day 5" means through the whole of day 5 (due at midnight after it).
"daily by 24:00" (or 00:00) is due at the end of the day. Interval slots are aligned on local midnight (an interval
divides a day), so "every 6 hours" slots start at 00:00, 06:00, 12:00 and 18:00 local time. A day of the month past
the month's end means its last day (by day 31 → 28 or 29 February); a yearly 29/02 falls on 28/02 in common years.
"The next" date of a year or school year counts from the period's last day, so "yearly by 31/12" is due at the end
of the year itself and "each school year by 31 May" at the end of the school year's last day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from cityops.clock import LOCAL_TZ
from cityops.i18n import fold
from cityops.observations.periods import Period, parse_period, period_of

MONTHS_EN = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# How far before a moment the period whose deadline falls at that moment can start (to begin the walk there).
_LOOK_BACK = {
    "day": timedelta(days=2),
    "month": timedelta(days=70),
    "quarter": timedelta(days=130),
    "year": timedelta(days=750),
    "school_year": timedelta(days=900),
}
_PERIOD_OF_KIND = {"day": "day", "month": "month", "quarter": "quarter", "year": "year", "school_year": "school_year"}


class CadenceError(ValueError):
    """The text is not a cadence cityops understands."""


@dataclass(frozen=True, slots=True)
class Expected:
    """One period a feed must deliver, and when it is due."""

    period: Period
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Cadence:
    """A parsed cadence: interval slots, or calendar periods with a deadline rule."""

    kind: str  # interval, day, month, quarter, year, school_year
    seconds: int = 0  # interval length
    hour: int = 0  # day: the time of the deadline (24:00 = the end of the day)
    minute: int = 0
    day: int = 0  # month, quarter: day of the following month; year, school_year: day of `month`
    month: int = 0

    @property
    def period_type(self) -> str:
        """The period type of the indicators this cadence delivers."""
        return "instant" if self.kind == "interval" else _PERIOD_OF_KIND[self.kind]

    @property
    def text(self) -> str:
        """The canonical English form, as stored."""
        if self.kind == "interval":
            if self.seconds % 3600 == 0:
                hours = self.seconds // 3600
                return f"every {hours} hour" + ("s" if hours > 1 else "")
            minutes = self.seconds // 60
            return f"every {minutes} minute" + ("s" if minutes > 1 else "")
        if self.kind == "day":
            return f"daily by {self.hour:02d}:{self.minute:02d}"
        if self.kind == "month":
            return f"monthly by day {self.day}"
        if self.kind == "quarter":
            return f"quarterly by day {self.day}"
        if self.kind == "year":
            return f"yearly by {self.day:02d}/{self.month:02d}"
        return f"each school year by {self.day} {MONTHS_EN[self.month - 1].capitalize()}"

    def describe(self, language: str) -> str:
        """The cadence in the reader's language."""
        if language == "en":
            return self.text
        if self.kind == "interval":
            if self.seconds % 3600 == 0:
                return f"mỗi {self.seconds // 3600} giờ"
            return f"mỗi {self.seconds // 60} phút"
        if self.kind == "day":
            return f"hằng ngày trước {self.hour:02d}:{self.minute:02d}"
        if self.kind == "month":
            return f"hằng tháng trước ngày {self.day}"
        if self.kind == "quarter":
            return f"hằng quý trước ngày {self.day}"
        if self.kind == "year":
            return f"hằng năm trước {self.day:02d}/{self.month:02d}"
        return f"mỗi năm học trước {self.day:02d}/{self.month:02d}"

    def due(self, period: Period) -> datetime:
        """When a period's data is due (UTC)."""
        if self.kind == "interval":
            return period.end
        if self.kind == "day":
            local_day = period.start.astimezone(LOCAL_TZ).date()
            if self.hour == 24:
                return _end_of_day(local_day)
            return datetime.combine(local_day, time(self.hour, self.minute), tzinfo=LOCAL_TZ).astimezone(UTC)
        end_local = period.end.astimezone(LOCAL_TZ).date()  # the first day after the period
        if self.kind in ("month", "quarter"):
            last = _days_in_month(end_local.year, end_local.month)
            deadline = date(end_local.year, end_local.month, min(self.day, last))
        else:  # the first such date from the period's last day on ("by 31/12" for a year: its own last day)
            deadline = _on_or_after(end_local - timedelta(days=1), self.month, self.day)
        return _end_of_day(deadline)

    def slot(self, moment: datetime) -> Period:
        """The period of this cadence that contains a moment."""
        if self.kind == "interval":
            offset = int((moment.astimezone(LOCAL_TZ).utcoffset() or timedelta(0)).total_seconds())
            epoch = (int(moment.timestamp()) + offset) // self.seconds * self.seconds - offset
            start = datetime.fromtimestamp(epoch, UTC)
            end = start + timedelta(seconds=self.seconds)
            return Period("instant", start.strftime("%Y-%m-%dT%H:%M:%SZ"), start, end)
        return period_of(self.period_type, moment)

    def next(self, period: Period) -> Period:
        """The period after this one."""
        if self.kind == "interval":
            return self.slot(period.end)
        if self.kind == "school_year":  # school years leave the summer out: step a year from the start
            return period_of(self.period_type, period.start + timedelta(days=366))
        return period_of(self.period_type, period.end)

    def expected_between(self, first_due: datetime, last_start: datetime) -> Iterator[Expected]:
        """The periods due at or after `first_due` that start at or before `last_start`, in order."""
        if self.kind == "interval":
            period = self.slot(first_due - timedelta(seconds=self.seconds))
        else:
            period = period_of(self.period_type, first_due - _LOOK_BACK[self.kind])
        while period.start <= last_start:
            due_at = self.due(period)
            if due_at >= first_due:
                yield Expected(period, due_at)
            period = self.next(period)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return _MONTH_DAYS[month - 1]


def _on_or_after(day: date, month: int, day_of_month: int) -> date:
    """The first date on or after `day` that falls on day_of_month/month (29/02 falls on 28/02 in common years)."""
    for year in (day.year, day.year + 1):
        candidate = date(year, month, min(day_of_month, _days_in_month(year, month)))
        if candidate >= day:
            return candidate
    raise CadenceError("no such date")  # pragma: no cover - two years always hold one


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


_INTERVAL = re.compile(r"^(?:every|moi)\s+(?:(\d{1,4})\s*)?(minutes?|mins?|phut|hours?|gio|tieng)$")
_DAILY = re.compile(r"^(?:daily|every day|hang ngay|moi ngay)\s+(?:by|truoc)\s+(\d{1,2})(?:[:h](\d{2})|h)$")
_MONTHLY = re.compile(r"^(?:monthly|hang thang)\s+(?:by|truoc)\s+(?:day|ngay)\s+(\d{1,2})$")
_QUARTERLY = re.compile(r"^(?:quarterly|hang quy)\s+(?:by|truoc)\s+(?:day|ngay)\s+(\d{1,2})$")
_YEARLY = re.compile(r"^(?:yearly|annually|hang nam)\s+(?:by|truoc)\s+(.+)$")
_SCHOOL = re.compile(r"^(?:each school year|every school year|moi nam hoc|hang nam hoc)\s+(?:by|truoc)\s+(.+)$")
_DAY_MONTH = re.compile(r"^(?:ngay\s+)?(\d{1,2})\s*(?:/|-|\s|\s*thang\s*)\s*(\d{1,2}|[a-z]+)$")


def _day_month(text: str) -> tuple[int, int]:
    match = _DAY_MONTH.match(text.strip())
    if not match:
        raise CadenceError(f"not a day and month: {text!r}")
    day = int(match[1])
    month_text = match[2]
    if month_text.isdigit():
        month = int(month_text)
    else:
        names = [name for name in MONTHS_EN if name.startswith(month_text)]
        if len(month_text) < 3 or len(names) != 1:
            raise CadenceError(f"not a month: {month_text!r}")
        month = MONTHS_EN.index(names[0]) + 1
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(2024, month):
        raise CadenceError(f"no such day: {day}/{month}")
    return day, month


def parse_cadence(text: str) -> Cadence:
    """Parse a cadence in English or Vietnamese; raise CadenceError when it is not one."""
    folded = re.sub(r"\s+", " ", fold(text).strip().lower())
    if match := _INTERVAL.match(folded):
        count = int(match[1] or 1)
        seconds = count * (3600 if match[2].startswith(("hour", "gio", "tieng")) else 60)
        if not 60 <= seconds <= 86_400 or 86_400 % seconds:
            raise CadenceError("an interval is 1 minute to 24 hours and divides a day evenly")
        return Cadence("interval", seconds=seconds)
    if match := _DAILY.match(folded):
        hour, minute = int(match[1]), int(match[2] or 0)
        if hour > 24 or minute > 59 or (hour == 24 and minute):
            raise CadenceError(f"no such time: {hour}:{minute:02d}")
        if hour == 0 and minute == 0:  # "by midnight": the end of the day, not its first moment
            hour = 24
        return Cadence("day", hour=hour, minute=minute)
    for pattern, kind in ((_MONTHLY, "month"), (_QUARTERLY, "quarter")):
        if match := pattern.match(folded):
            day = int(match[1])
            if not 1 <= day <= 31:
                raise CadenceError(f"no such day of a month: {day}")
            return Cadence(kind, day=day)
    for pattern, kind in ((_YEARLY, "year"), (_SCHOOL, "school_year")):
        if match := pattern.match(folded):
            day, month = _day_month(match[1])
            return Cadence(kind, day=day, month=month)
    raise CadenceError(f"not a cadence: {text[:60]!r}")


def period_for_key(cadence: Cadence, key: str) -> Period:
    """The period of a stored expectation key (an interval slot's key is its start)."""
    if cadence.kind == "interval":
        return cadence.slot(parse_period(key).start)
    return parse_period(key)
