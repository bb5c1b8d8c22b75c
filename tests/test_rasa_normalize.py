"""The appointment form's date and time reading (rasa/actions/normalize.py).

The module runs in Rasa's action server, not in the iasovoice package, so it is imported by path.
Most cases use one fixed today, Thursday 2026-12-03, so weekday and year-wrap answers are checkable by
hand; the boundary cases (month ends, leap years, year wrap) pick their own today.
"""

from __future__ import annotations

import ast
import datetime as dt
import sys
from pathlib import Path

import pytest

RASA_DIR = Path(__file__).resolve().parents[1] / "rasa"
sys.path.insert(0, str(RASA_DIR))

from actions.normalize import (
    normalise_date,
    normalise_time,
    parse_date,
    parse_time,
    words_to_number,
)

TODAY = dt.date(2026, 12, 3)  # a Thursday


def test_today_is_a_thursday() -> None:
    """Every weekday expectation below assumes this."""
    assert TODAY.weekday() == 3


# --------------------------------------------------------------------------------------------------
# Dates, today = Thursday 2026-12-03
# --------------------------------------------------------------------------------------------------

DATE_CASES: list[tuple[str, str | None]] = [
    # relative days
    ("today", "2026-12-03"),
    ("tomorrow", "2026-12-04"),
    ("the day after tomorrow", "2026-12-05"),
    ("day after tomorrow", "2026-12-05"),
    ("this afternoon", "2026-12-03"),
    ("tonight", "2026-12-03"),
    # bare weekday: the next one strictly after today
    ("friday", "2026-12-04"),
    ("sunday", "2026-12-06"),
    ("monday", "2026-12-07"),
    ("tuesday", "2026-12-08"),
    ("wednesday", "2026-12-09"),
    ("thursday", "2026-12-10"),
    ("this coming thursday", "2026-12-10"),
    # this / next / this week / next week
    ("this thursday", "2026-12-03"),
    ("this friday", "2026-12-04"),
    ("next monday", "2026-12-07"),
    ("next thursday", "2026-12-10"),
    ("next friday", "2026-12-11"),
    ("next sunday", "2026-12-13"),
    ("tuesday next week", "2026-12-08"),
    ("next week tuesday", "2026-12-08"),
    ("friday this week", "2026-12-04"),
    ("monday this week", None),  # already past
    ("next week", None),
    ("this week", None),
    ("sometime next week", None),
    ("next month", None),
    # counted from today
    ("in three days", "2026-12-06"),
    ("in 10 days", "2026-12-13"),
    ("in a week", "2026-12-10"),
    ("in two weeks", "2026-12-17"),
    ("in two weeks time", "2026-12-17"),
    ("three days from now", "2026-12-06"),
    ("a week from tomorrow", "2026-12-11"),
    ("in a fortnight", "2026-12-17"),
    ("in a couple of days", None),
    # month and day
    ("december fifth", "2026-12-05"),
    ("december 5th", "2026-12-05"),
    ("dec 5", "2026-12-05"),
    ("december the fifth", "2026-12-05"),
    ("the fifth of december", "2026-12-05"),
    ("5 december", "2026-12-05"),
    ("december twenty third", "2026-12-23"),
    ("december thirty first", "2026-12-31"),
    ("december third", "2026-12-03"),  # today still counts
    ("december second", "2027-12-02"),  # passed this year: next year's
    ("january third", "2027-01-03"),  # year wrap
    ("jan 3rd", "2027-01-03"),
    ("12/5", "2026-12-05"),
    ("1/3", "2027-01-03"),
    ("12/5/2027", "2027-12-05"),
    ("12/5/27", "2027-12-05"),
    ("twelve fifth", None),  # a spoken month number is ambiguous
    ("13/5", None),
    # with a year
    ("2026-12-08", "2026-12-08"),
    ("2026-12-01", None),  # in the past
    ("2027-02-30", None),
    ("january third twenty twenty seven", "2027-01-03"),
    ("january 3 2027", "2027-01-03"),
    ("january third two thousand twenty seven", "2027-01-03"),
    ("the third of january twenty twenty seven", "2027-01-03"),
    ("december twenty third twenty twenty six", "2026-12-23"),
    ("december fifth twenty twenty five", None),  # a past year is not corrected
    ("december twenty twenty", None),  # day 20 of 2020, or the twentieth? refused
    # impossible days
    ("february twenty ninth", None),  # 2027 is not a leap year
    ("february 29 2028", "2028-02-29"),
    ("april thirty first", None),
    ("february thirtieth", None),
    # an ordinal alone: this month, else next month
    ("the twenty third", "2026-12-23"),
    ("the 23rd", "2026-12-23"),
    ("twenty third", "2026-12-23"),
    ("the third", "2026-12-03"),
    ("the second", "2027-01-02"),  # passed: January, across the year end
    ("the thirty first", "2026-12-31"),
    ("the twenty three", None),  # a cardinal alone is not a day
    # weekday with a date must agree
    ("tuesday the eighth", "2026-12-08"),
    ("tuesday december eighth", "2026-12-08"),
    ("thursday the third", "2026-12-03"),
    ("tuesday the ninth", None),
    # fillers
    ("um how about tuesday", "2026-12-08"),
    ("uh could we do the fifth", "2026-12-05"),
    ("maybe sometime on friday", "2026-12-04"),
    ("is tomorrow okay", "2026-12-04"),
    ("like next monday please", "2026-12-07"),
    ("Tuesday, December 8th.", "2026-12-08"),
    # with a part of day or a time
    ("tuesday morning", "2026-12-08"),
    ("tomorrow in the afternoon", "2026-12-04"),
    ("tuesday at three pm", "2026-12-08"),
    ("three pm tomorrow", "2026-12-04"),
    ("tomorrow morning at ten", "2026-12-04"),
    ("the fifth at nine thirty", "2026-12-05"),
    ("tuesday three", None),  # an unanchored number next to a date is not read
    ("tomorrow morning at three pm", None),  # contradicts itself
    # never guess
    ("whenever", None),
    ("banana", None),
    ("not sure", None),
    ("", None),
    ("um", None),
    ("not tuesday", None),
    ("cant do tuesday", None),
    ("tuesday or wednesday", None),
    ("december", None),
    ("the weekend", None),
]


@pytest.mark.parametrize(("text", "expected"), DATE_CASES)
def test_normalise_date(text: str, expected: str | None) -> None:
    assert normalise_date(text, TODAY) == expected


# --------------------------------------------------------------------------------------------------
# Dates at the boundaries, each with its own today
# --------------------------------------------------------------------------------------------------

BOUNDARY_CASES: list[tuple[dt.date, str, str | None]] = [
    # "the thirty first" in a 30-day month is refused, not moved to a later month
    (dt.date(2026, 11, 15), "the thirty first", None),
    (dt.date(2026, 11, 15), "the thirtieth", "2026-11-30"),
    # the next month lacks the day: refused
    (dt.date(2027, 1, 31), "the thirtieth", None),
    (dt.date(2027, 1, 31), "the thirty first", "2027-01-31"),
    # February 29th: the year chosen must be a leap year
    (dt.date(2027, 1, 10), "february twenty ninth", None),  # 2027's has not passed and does not exist
    (dt.date(2027, 3, 1), "february twenty ninth", "2028-02-29"),  # 2027's has passed: 2028's
    (dt.date(2028, 1, 10), "february twenty ninth", "2028-02-29"),
    # year wrap from the last week of December (2026-12-28 is a Monday)
    (dt.date(2026, 12, 28), "tuesday", "2026-12-29"),
    (dt.date(2026, 12, 28), "next tuesday", "2027-01-05"),
    (dt.date(2026, 12, 28), "in a week", "2027-01-04"),
    (dt.date(2026, 12, 28), "january second", "2027-01-02"),
    (dt.date(2026, 12, 28), "the fourth", "2027-01-04"),
    (dt.date(2026, 12, 31), "tomorrow", "2027-01-01"),
    (dt.date(2026, 12, 31), "the first", "2027-01-01"),
    # said on a Sunday, "next monday" is tomorrow (the Monday of the next week)
    (dt.date(2026, 12, 6), "next monday", "2026-12-07"),
]


@pytest.mark.parametrize(("today", "text", "expected"), BOUNDARY_CASES)
def test_normalise_date_boundaries(today: dt.date, text: str, expected: str | None) -> None:
    assert normalise_date(text, today) == expected


def test_parse_date_returns_dates_and_accepts_a_datetime_for_today() -> None:
    assert parse_date("tomorrow", dt.datetime(2026, 12, 3, 16, 45)) == dt.date(2026, 12, 4)
    assert parse_date("the fifth", TODAY) == dt.date(2026, 12, 5)


def test_parse_date_is_never_in_the_past() -> None:
    """A clinic books forward: whatever is said, the answer is today or later."""
    phrases = [text for text, _ in DATE_CASES] + ["the first", "january first", "monday", "12/1"]
    for day in (dt.date(2026, 12, 3) + dt.timedelta(days=k) for k in range(0, 400, 7)):
        for text in phrases:
            found = parse_date(text, day)
            assert found is None or found >= day, (text, day, found)


# --------------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------------

TIME_CASES: list[tuple[str, str | None]] = [
    # am / pm
    ("three pm", "15:00"),
    ("3 pm", "15:00"),
    ("3pm", "15:00"),
    ("three p m", "15:00"),
    ("3:30 p.m.", "15:30"),
    ("three thirty pm", "15:30"),
    ("nine a m", "09:00"),
    ("9 am", "09:00"),
    ("seven pm", "19:00"),
    ("twelve am", "00:00"),
    ("twelve pm", "12:00"),
    # parts of the day after an hour
    ("ten in the morning", "10:00"),
    ("two in the afternoon", "14:00"),
    ("half past two in the afternoon", "14:30"),
    ("eight in the evening", "20:00"),
    ("twelve in the morning", None),  # people disagree: noon or midnight
    ("ten in the afternoon", None),
    # past / to
    ("half past two", "14:30"),
    ("quarter past nine", "09:15"),
    ("quarter to four", "15:45"),
    ("a quarter to four", "15:45"),
    ("ten to four", "15:50"),
    ("twenty five past ten", "10:25"),
    ("five minutes after nine", "09:05"),
    ("quarter to one", "12:45"),
    ("quarter to seven", "06:45"),  # the hour said (7) is a morning hour
    ("half to four", None),
    # named times
    ("noon", "12:00"),
    ("midday", "12:00"),
    ("twelve noon", "12:00"),
    ("midnight", "00:00"),
    # no am/pm: clinic hours (7-11 am, 12 noon, 1-6 pm)
    ("9:15", "09:15"),
    ("nine fifteen", "09:15"),
    ("nine oh five", "09:05"),
    ("seven", "07:00"),
    ("eleven thirty", "11:30"),
    ("twelve", "12:00"),
    ("twelve thirty", "12:30"),
    ("one", "13:00"),
    ("three", "15:00"),
    ("six thirty", "18:30"),
    ("ten oclock", "10:00"),
    ("ten o'clock", "10:00"),
    ("four o clock", "16:00"),
    ("nine 30", "09:30"),
    # 24-hour readings
    ("15:30", "15:30"),
    ("06:30", "06:30"),
    ("0:30", "00:30"),
    ("15:30 pm", None),
    ("13 pm", None),
    ("25:00", None),
    ("9:75", None),
    ("thirteen", None),  # hours in words are 1-12
    # fillers
    ("at three", "15:00"),
    ("um how about three pm", "15:00"),
    ("could we do like ten thirty", "10:30"),
    # with a date
    ("tuesday at three", "15:00"),
    ("three pm tomorrow", "15:00"),
    ("tomorrow afternoon at three", "15:00"),
    ("tomorrow morning at six", "06:00"),  # the morning overrides the clinic-hours reading
    ("the fifth at nine thirty", "09:30"),
    ("tomorrow morning at three pm", None),
    ("tuesday three", None),
    # vague or unreadable
    ("in the morning", None),
    ("first thing in the morning", None),
    ("morning", None),
    ("afternoon", None),
    ("this afternoon", None),
    ("early afternoon", None),
    ("whenever", None),
    ("not sure", None),
    ("around three", None),
    ("after three", None),
    ("three or four", None),
    ("nine fifteen oclock", None),
    ("nine five", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), TIME_CASES)
def test_normalise_time(text: str, expected: str | None) -> None:
    assert normalise_time(text) == expected


def test_parse_time_returns_times() -> None:
    assert parse_time("half past two in the afternoon") == dt.time(14, 30)
    assert parse_time("banana") is None


# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------

NUMBER_CASES: list[tuple[str, int | None]] = [
    ("zero", 0),
    ("seven", 7),
    ("thirteen", 13),
    ("twenty", 20),
    ("twenty three", 23),
    ("twenty-three", 23),
    ("twenty third", 23),
    ("thirty first", 31),
    ("first", 1),
    ("twelfth", 12),
    ("23", 23),
    ("23rd", 23),
    ("a hundred", 100),
    ("one hundred and five", 105),
    ("nine hundred ninety nine", 999),
    ("one hundredth", 100),
    ("twelve hundred", 1200),
    ("a thousand", 1000),
    ("two thousand", 2000),
    ("two thousand twenty seven", 2027),
    ("two thousand and twenty seven", 2027),
    ("twenty thousand five hundred and one", 20501),
    # said in pairs, as years are
    ("twenty twenty seven", 2027),
    ("twenty twenty", 2020),
    ("nineteen eighty four", 1984),
    ("twenty oh seven", 2007),
    ("nineteen hundred", 1900),
    # not one number
    ("", None),
    ("banana", None),
    ("five five", None),
    ("twenty five six", None),
    ("and", None),
    ("a", None),
    ("oh", None),
    ("thousand", None),
    ("two thousand and", None),
    ("2 thousand", None),
]


@pytest.mark.parametrize(("text", "expected"), NUMBER_CASES)
def test_words_to_number(text: str, expected: int | None) -> None:
    assert words_to_number(text) == expected


# --------------------------------------------------------------------------------------------------
# What the action server can rely on
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 42, ["tuesday"]])
def test_non_text_is_refused_not_raised(value: object) -> None:
    """A slot may hold None or a list; the form then asks again instead of the action crashing."""
    assert normalise_date(value, TODAY) is None  # type: ignore[arg-type]
    assert normalise_time(value) is None  # type: ignore[arg-type]
    assert words_to_number(value) is None  # type: ignore[arg-type]


def test_module_uses_only_the_standard_library() -> None:
    """It runs in Rasa's own virtual environment: no iasovoice, no third-party packages."""
    tree = ast.parse((RASA_DIR / "actions" / "normalize.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize(
    ("text", "expected"),
    [("330 in the afternoon.", "15:30"), ("3-30 in the afternoon.", "15:30"), ("1015 in the morning", "10:15"),
     ("at 1230", "12:30"),
     ("930 am", "09:30"), ("2026", None), ("in 2027", None)],
)
def test_times_whisper_writes_as_run_together_digits(text: str, expected: str | None) -> None:
    assert normalise_time(text) == expected
