"""CronJob schedules, parsed as the Kubernetes API server parses them.

The API server validates `spec.schedule` with robfig/cron v3's `ParseStandard`: five fields (minute, hour,
day of month, month, day of week) or a macro, each field a list of values, ranges and steps, month and
weekday names in any case. It also refuses a time zone in the schedule (`TZ=`, `CRON_TZ=`; the CronJob
has `timeZone`). What it accepts can still never fire (the 31st of February): the controller then never
starts a Job, silently. Both are checked here.
"""

from __future__ import annotations

import calendar
import re
from typing import Optional

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# (name, lowest, highest, names)
FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
          ("month", 1, 12, MONTHS), ("day of week", 0, 6, WEEKDAYS))
EXAMPLE = "'0 3 * * *' for 03:00 UTC daily"


class CronError(ValueError):
    pass


def _number(text: str, names: Optional[dict[str, int]], field: str) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        named = f" or a name ({', '.join(n.upper() for n in names)})" if names else ""
        raise CronError(f"{text!r} in the {field} field is not a number{named}")
    return int(text)


def _field(text: str, field: str, low: int, high: int, names: Optional[dict[str, int]]) -> tuple[set[int], bool]:
    """The values a field matches, and whether it was written as `*` or `?` (robfig's star bit)."""
    values: set[int] = set()
    star = False
    for part in text.split(","):
        range_text, *step_text = part.split("/")
        if len(step_text) > 1:
            raise CronError(f"{part!r} in the {field} field has more than one '/'")
        bounds = range_text.split("-")
        if len(bounds) > 2:
            raise CronError(f"{part!r} in the {field} field has more than one '-'")
        if bounds[0] in ("*", "?"):
            if len(bounds) > 1:
                raise CronError(f"{part!r} in the {field} field: '*' takes no range")
            start, end, star_part = low, high, True
        else:
            start = _number(bounds[0], names, field)
            end = _number(bounds[1], names, field) if len(bounds) == 2 else start
            star_part = False
        step = 1
        if step_text:
            step = _number(step_text[0], None, field)
            if step == 0:
                raise CronError(f"{part!r} in the {field} field: a step must be a positive number")
            if len(bounds) == 1 and not star_part:
                end = high  # `N/step` means `N-max/step`
            if step > 1:
                star_part = False
        if start < low:
            raise CronError(f"{part!r} in the {field} field starts below {low} (the {field} runs {low} to {high})")
        if end > high:
            raise CronError(f"{part!r} in the {field} field ends above {high} (the {field} runs {low} to {high})")
        if start > end:
            raise CronError(f"{part!r} in the {field} field starts after it ends")
        values.update(range(start, end + 1, step))
        star = star or star_part
    return values, star


def schedule_problem(schedule: str) -> Optional[str]:
    """Why the API server refuses `schedule`, or why it would never fire (None: it fires)."""
    text = schedule.strip()
    if "TZ" in text:
        return (f"{schedule!r} holds a time zone, which Kubernetes refuses in a schedule (the CronJob runs in UTC); "
                f"remove it and give the time in UTC, e.g. {EXAMPLE}")
    if text.startswith("@every "):
        return _every_problem(schedule, text.removeprefix("@every ").strip())
    if text.startswith("@"):
        if text in MACROS:
            return None
        return (f"{schedule!r} is not a cron macro; use one of {', '.join(MACROS)} or @every <duration>, or five "
                f"fields, e.g. {EXAMPLE}")
    parts = text.split()
    if len(parts) != 5:
        return (f"{schedule!r} is not a cron schedule: five fields (minute hour day-of-month month day-of-week) "
                f"are needed, it has {len(parts)}; e.g. {EXAMPLE}, or @daily")
    try:
        fields = [_field(part, name, low, high, names) for part, (name, low, high, names) in zip(parts, FIELDS)]
    except CronError as error:
        return f"{schedule!r} is not a cron schedule: {error}; e.g. {EXAMPLE}"
    (days, day_star), (months, _), (_, weekday_star) = fields[2], fields[3], fields[4]
    # A restricted day of month with any weekday must exist in one of the months (29 February does, in leap years).
    if weekday_star and not day_star and not any(day <= calendar.monthrange(2024, month)[1]
                                                 for day in days for month in months):
        return (f"{schedule!r} never fires: no month it names has the days it names, so Kubernetes would never "
                f"start a backup; fix the day or the month, e.g. {EXAMPLE}")
    return None


# Go's time.ParseDuration, which robfig/cron uses for `@every`.
GO_DURATION = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _every_problem(schedule: str, duration: str) -> Optional[str]:
    if not GO_DURATION.match(duration):
        return (f"{schedule!r}: {duration!r} is not a duration; write e.g. @every 6h or @every 1h30m, or five "
                f"fields, e.g. {EXAMPLE}")
    seconds = sum(float(number) * GO_UNITS[unit]
                  for number, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", duration))
    if seconds < 60:
        return (f"{schedule!r} would start a backup more than once a minute, before the last one could finish; "
                "use at least @every 1m")
    return None
