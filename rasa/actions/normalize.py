"""Read the dates and times callers say into ISO dates and 24-hour times, or refuse them.

The appointment form's slots come from Whisper transcripts of phone speech: lowercase, no punctuation,
numbers mostly as words ("next tuesday", "the twenty third", "three thirty pm", "half past two in the
afternoon"). The form keeps ISO dates ("2026-12-08") and 24-hour times ("15:30") so the booking system
and the note read one format.

The rule everywhere is *never guess*: a phrase is read only when every word in it is either understood
or a known filler ("um", "how about", "is", "on", ...). A leftover word ("not tuesday", "tuesday or
wednesday", "after three", "around three") makes the answer None, and the form asks again. A wrong
booking costs far more than one more question.

Choices (each one is tested in tests/test_rasa_normalize.py):

Dates (a clinic books forward, so a date is never in the past; ``today`` itself is allowed):
  * A bare weekday ("tuesday", "this coming tuesday") is the next one strictly after today: said on a
    Thursday, "thursday" means a week today, because a caller who meant today says "today".
  * "this tuesday" is the one on or after today (today included); "tuesday this week" is that day of the
    current Monday-to-Sunday week, or None when it has passed.
  * "next tuesday" (and "tuesday next week") is the Tuesday of the next Monday-to-Sunday week. Said on
    a Thursday, "next friday" is eight days away, not tomorrow: people who mean tomorrow say "tomorrow".
  * "next week", "this week", "next month", "the weekend" are not dates: None (the form asks for a day).
  * "in three days", "in two weeks (time)", "in a fortnight", "three days from now/today/tomorrow",
    "a week from today" count from today. How far ahead is too far is the form's policy, not this
    module's: "in nine hundred days" is read as said.
  * A month and day without a year ("december fifth", "dec 5", "the fifth of december", "12/5") is this
    year's date when it is today or later, else next year's. The date must exist in the year so chosen:
    "february twenty ninth" is None unless that year is a leap year, "april thirty first" is None.
  * With a year ("january third twenty twenty seven", "january 3 2027", ISO "2027-01-03") the date must
    exist and not be in the past, else None (a past year is a mishearing, not something to correct).
  * Digits with slashes are US order, month/day ("12/5" is December 5th). A spoken month number
    ("twelve fifth") is ambiguous and is None.
  * An ordinal alone ("the twenty third", "the 23rd") is that day of this month when it is today or
    later, else of next month. When that month has no such day ("the thirty first" said in November)
    the answer is None, not a jump to a later month: the caller is probably wrong about the month.
    A cardinal alone ("the twenty three") is None: it is as likely an hour or a count.
  * A weekday with a date ("tuesday the eighth", "tuesday december eighth") must agree, else None.
  * A trailing part of day ("tuesday morning", "tomorrow in the afternoon") does not change the date;
    "this morning/afternoon/evening" and "tonight" are today.

Times (no seconds; "HH:MM"):
  * Without am/pm the hour is read by clinic hours: 7-11 are morning, 12 is noon, 1-6 are afternoon
    ("nine fifteen" is 09:15, "three" is 15:00, "six thirty" is 18:30). The rule applies to the hour
    said, so "quarter to seven" is 06:45 and "quarter to one" 12:45.
  * "am"/"pm" (also "a m", "a.m."), "in the morning" (hours 1-11), "in the afternoon" (12 and 1-7) and
    "in the evening"/"tonight" (4-11) set the half of the day; a part of day that does not fit the hour
    ("ten in the afternoon") is None, and so is "twelve in the morning", which people read both ways.
  * Digits 13-23 and 0, and a zero-padded hour ("06:30"), are 24-hour times, and refuse am/pm.
  * "noon", "midday" are 12:00, "midnight" is 00:00.
  * A part of day alone ("morning", "in the morning", "first thing in the morning", "afternoon") is
    vague: None, so the form asks for an hour.

Both parsers also read a date and a time said together ("tuesday at three pm", "three pm tomorrow",
"tomorrow morning at ten") and take their own half, because Rasa may put the whole sentence in a slot.
The time must then be introduced by "at" or carry a marker (am/pm, o'clock, a part of day, "half past",
a colon); "tuesday three" is refused. A time that contradicts the date's part of day ("tomorrow morning
at three pm") makes both None.

The module is pure standard library and Python 3.10 compatible: it runs inside Rasa's own virtual
environment (the action server), not the IasoVoice one, so it must not import the iasovoice package.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Sequence

__all__ = ["normalise_date", "normalise_time", "parse_date", "parse_time", "words_to_number"]

# A date phrase becomes a resolver first and a date only once `today` is known: the parsers can then
# ask "is this a date phrase?" (to split "tuesday at three") without a today.
_Resolver = Callable[[dt.date], "dt.date | None"]

# ---------------------------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------------------------


def _numbered(words: str, start: int = 1, step: int = 1) -> dict[str, int]:
    """{"one": 1, "two": 2, ...} from a space-separated list, so the tables stay one line each."""
    return {word: start + step * i for i, word in enumerate(words.split())}


_UNITS = _numbered("one two three four five six seven eight nine")
_TEENS = _numbered("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen", 10)
_TENS = _numbered("twenty thirty forty fifty sixty seventy eighty ninety", 20, 10)
_ORD_UNITS = _numbered("first second third fourth fifth sixth seventh eighth ninth")
_ORD_TEENS = _numbered(
    "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth", 10
)
_ORD_TENS = _numbered("twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth", 20, 10)
# Said for a zero inside a number: "nine oh five", "twenty oh seven".
_ZERO_WORDS = frozenset({"oh", "o", "zero"})

# Full names plus the written abbreviations a text channel may send. Speech never produces
# abbreviations, and "mon", "wed", "sat", "sun" are ordinary words ("wed" is "we'd" once Whisper drops
# the apostrophe), so only the weekday abbreviations that are not words are read.
_WEEKDAYS: dict[str, int] = {
    "monday": 0,
    "tuesday": 1,
    "tue": 1,
    "tues": 1,
    "wednesday": 2,
    "thursday": 3,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "friday": 4,
    "fri": 4,
    "saturday": 5,
    "sunday": 6,
}
_MONTHS: dict[str, int] = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}

# Conversational glue that carries no date or time. Negations ("not", "cant", "dont"), alternatives
# ("or"), ranges ("between", "after", "before") and hedges ("around", "about") are deliberately absent:
# left over, they make the phrase unreadable, which is the point.
_FILLER_WORDS = frozenset(
    {
        "um",
        "umm",
        "uh",
        "uhh",
        "uhm",
        "er",
        "erm",
        "ah",
        "ahh",
        "hmm",
        "hm",
        "mm",
        "mhm",
        "like",
        "maybe",
        "perhaps",
        "probably",
        "is",
        "on",
        "sometime",
        "please",
        "ok",
        "okay",
        "so",
        "well",
        "yeah",
        "yes",
        "yep",
        "sure",
        "just",
        "actually",
        "then",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
        "i",
        "im",
        "id",
        "ill",
        "ive",
        "we",
        "wed",
        "lets",
        "let",
        "us",
        "me",
        "my",
        "you",
        "could",
        "can",
        "would",
        "will",
        "do",
        "does",
        "have",
        "be",
        "think",
        "guess",
        "prefer",
        "want",
        "need",
        "book",
        "take",
        "get",
        "an",
        "appointment",
        "for",
        "that",
        "thats",
        "it",
        "its",
        "works",
        "good",
        "great",
        "fine",
        "perfect",
        "better",
        "best",
        "free",
        "available",
    }
)
# Fillers whose words are not safe alone ("about" alone is a hedge: "about three" is refused).
_FILLER_PHRASES: tuple[tuple[str, ...], ...] = (
    ("how", "about"),
    ("what", "about"),
    ("if", "possible"),
    ("is", "there"),
)

# Parts of the day, longest first so "in the morning" wins over "morning".
_DAYPARTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("in", "the", "morning"), "morning"),
    (("in", "the", "afternoon"), "afternoon"),
    (("in", "the", "evening"), "evening"),
    (("this", "morning"), "morning"),
    (("this", "afternoon"), "afternoon"),
    (("this", "evening"), "evening"),
    (("morning",), "morning"),
    (("afternoon",), "afternoon"),
    (("evening",), "evening"),
    (("tonight",), "evening"),
)
# What may follow an hour to say which half of the day it is.
# (The qualified day parts, but not a bare "morning": "three morning" is no time.)
_TIME_MARKERS: tuple[tuple[tuple[str, ...], str], ...] = (
    *_DAYPARTS[:6],
    (("tonight",), "evening"),
    (("am",), "am"),
    (("pm",), "pm"),
)

_DIGITS_RE = re.compile(r"^\d+$")
_DIGIT_ORDINAL_RE = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_ISO_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_SLASH_RE = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?$")
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


# ---------------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------------


def _tokenise(text: str) -> list[str]:
    """Lowercase words, with the few written forms a text channel or Whisper may add made uniform.

    Whisper usually drops punctuation, but not always ("3:30 p.m.", "twenty-third", "o'clock"), so
    those are folded into the spoken forms: "pm", "twenty third", "oclock". Apostrophes go (as Whisper
    drops them anyway: "i'm" and "im" are one token). Colons, slashes and dashes are kept only between
    digits, where they make "9:15", "12/5" and "2026-12-08".
    """
    s = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    s = re.sub(r"[\u2010-\u2015]", "-", s)
    s = re.sub(r"(?<![a-z])([ap])\s*\.\s*m\b\.?", r"\1m", s)  # a.m. / p. m. -> am / pm
    s = re.sub(r"\bo\s*'?\s*clock\b", "oclock", s)
    s = s.replace("'", "")
    s = re.sub(r"(?<!\d)(\d{1,2})\.(\d{2})(?!\d)", r"\1:\2", s)  # 3.30 -> 3:30
    s = re.sub(r"(?<!\d)[-:/]|[-:/](?!\d)", " ", s)
    s = re.sub(r"[^a-z0-9:/\-\s]", " ", s)
    s = re.sub(r"(\d)(am|pm)\b", r"\1 \2", s)  # 3pm -> 3 pm
    s = re.sub(r"(?<![a-z])([ap])\s+m\b", r"\1m", s)  # "a m" -> am
    return s.split()


def _clean(text: object) -> list[str]:
    """Tokens with fillers removed; a non-string (Rasa may hand over None or a list) gives none."""
    if not isinstance(text, str):
        return []
    tokens = _tokenise(text)
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase in _FILLER_PHRASES:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                i += len(phrase)
                break
        else:
            if tokens[i] not in _FILLER_WORDS:
                kept.append(tokens[i])
            i += 1
    return kept


# ---------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------


def _below_hundred(tokens: Sequence[str], i: int) -> tuple[int, int, bool] | None:
    """1-99 at tokens[i]: (value, next index, ordinal?). Greedy: "twenty" takes a following unit."""
    if i >= len(tokens):
        return None
    word = tokens[i]
    if word in _TENS:
        value = _TENS[word]
        if i + 1 < len(tokens):
            nxt = tokens[i + 1]
            if nxt in _UNITS:
                return value + _UNITS[nxt], i + 2, False
            if nxt in _ORD_UNITS:
                return value + _ORD_UNITS[nxt], i + 2, True
        return value, i + 1, False
    for table, ordinal in (
        (_ORD_TENS, True),
        (_TEENS, False),
        (_ORD_TEENS, True),
        (_UNITS, False),
        (_ORD_UNITS, True),
    ):
        if word in table:
            return table[word], i + 1, ordinal
    return None


def _below_thousand(tokens: Sequence[str], i: int) -> tuple[int, int, bool] | None:
    """1-999 at tokens[i]: "five", "a hundred", "twelve hundred", "one hundred and fifth"."""
    n = len(tokens)
    if i + 1 < n and tokens[i] == "a" and tokens[i + 1] in ("hundred", "hundredth"):
        multiplier, j = 1, i + 1
    else:
        head = _below_hundred(tokens, i)
        if head is None:
            return None
        multiplier, j, ordinal = head
        if ordinal or j >= n or tokens[j] not in ("hundred", "hundredth"):
            return head
    if tokens[j] == "hundredth":
        return multiplier * 100, j + 1, True
    value, j = multiplier * 100, j + 1
    k = j + 1 if j < n and tokens[j] == "and" else j
    tail = _below_hundred(tokens, k)
    if tail is None:
        return value, j, False  # a trailing "and" stays unread, so the whole number fails
    return value + tail[0], tail[1], tail[2]


def _standard_number(tokens: Sequence[str]) -> tuple[int, bool] | None:
    """A number as counted: "two thousand and twenty seven", "a hundred", "twenty third"."""
    n = len(tokens)
    if list(tokens) == ["zero"]:
        return 0, False
    if n >= 2 and tokens[0] == "a" and tokens[1] in ("thousand", "thousandth"):
        head: tuple[int, int, bool] | None = (1, 1, False)
    else:
        head = _below_thousand(tokens, 0)
    if head is None:
        return None
    value, i, ordinal = head
    if i < n and tokens[i] in ("thousand", "thousandth") and not ordinal:
        value *= 1000
        if tokens[i] == "thousandth":
            return (value, True) if i + 1 == n else None
        i += 1
        if i < n:
            if tokens[i] == "and":
                i += 1
            tail = _below_thousand(tokens, i)
            if tail is None:
                return None
            value, i, ordinal = value + tail[0], tail[1], tail[2]
    return (value, ordinal) if i == n else None


def _year_style_number(tokens: Sequence[str]) -> int | None:
    """A number said as two pairs, the way years are: "twenty twenty seven", "nineteen oh five"."""
    head = _below_hundred(tokens, 0)
    if head is None or head[2] or head[0] < 10:
        return None
    high, i, _ = head
    rest = list(tokens[i:])
    if rest == ["hundred"]:
        return high * 100
    if len(rest) == 2 and rest[0] in _ZERO_WORDS and rest[1] in _UNITS:
        return high * 100 + _UNITS[rest[1]]
    low = _below_hundred(tokens, i)
    if low is None or low[2] or low[0] < 10 or low[1] != len(tokens):
        return None
    return high * 100 + low[0]


def _parse_number(tokens: Sequence[str]) -> tuple[int, bool] | None:
    """(value, ordinal?) for all of `tokens`, or None: digits, "23rd", words, or a year said in pairs."""
    if not tokens:
        return None
    if len(tokens) == 1:
        if _DIGITS_RE.match(tokens[0]):
            return int(tokens[0]), False
        match = _DIGIT_ORDINAL_RE.match(tokens[0])
        if match:
            return int(match.group(1)), True
    if any(any(c.isdigit() for c in t) for t in tokens):
        return None  # "2 thousand": mixed forms are not something Whisper writes
    standard = _standard_number(tokens)
    if standard is not None:
        return standard
    year = _year_style_number(tokens)
    return (year, False) if year is not None else None


def words_to_number(text: str) -> int | None:
    """The number in `text`, cardinal or ordinal: "twenty three" -> 23, "twenty third" -> 23.

    Reads digits ("23", "23rd"), counted numbers up to 999,999 ("two thousand and twenty seven",
    "a hundred and five") and numbers said in pairs like years ("twenty twenty seven" -> 2027,
    "nineteen oh five" -> 1905). Anything else, including runs that are not one number ("five five",
    "three twenty thirty"), is None: the caller decides what an unreadable number means.
    """
    if not isinstance(text, str):
        return None
    parsed = _parse_number(_tokenise(text))
    return parsed[0] if parsed is not None else None


# ---------------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------------


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _plus_days(days: int) -> _Resolver:
    def resolve(today: dt.date) -> dt.date | None:
        try:
            return today + dt.timedelta(days=days)
        except OverflowError:
            return None

    return resolve


def _weekday_from(weekday: int, *, include_today: bool) -> _Resolver:
    """The first `weekday` from today on: today itself only when `include_today` ("this thursday")."""

    def resolve(today: dt.date) -> dt.date | None:
        delta = (weekday - today.weekday()) % 7
        if delta == 0 and not include_today:
            delta = 7
        return today + dt.timedelta(days=delta)

    return resolve


def _weekday_next_week(weekday: int) -> _Resolver:
    """`weekday` in the Monday-to-Sunday week after this one ("next tuesday")."""

    def resolve(today: dt.date) -> dt.date | None:
        return today + dt.timedelta(days=7 - today.weekday() + weekday)

    return resolve


def _weekday_this_week(weekday: int) -> _Resolver:
    """`weekday` in this Monday-to-Sunday week, or None once it has passed ("monday this week")."""

    def resolve(today: dt.date) -> dt.date | None:
        day = today + dt.timedelta(days=weekday - today.weekday())
        return day if day >= today else None

    return resolve


def _month_day(month: int, day: int, year: int | None) -> _Resolver:
    """A calendar date; without a year, this year's if not yet past, else next year's."""

    def resolve(today: dt.date) -> dt.date | None:
        if year is not None:
            found = _safe_date(year, month, day)
            return found if found is not None and found >= today else None
        chosen = today.year if (month, day) >= (today.month, today.day) else today.year + 1
        return _safe_date(chosen, month, day)

    return resolve


def _day_of_month(day: int) -> _Resolver:
    """A day number alone: this month if not yet past, else next month; None if that month lacks it."""

    def resolve(today: dt.date) -> dt.date | None:
        year, month = today.year, today.month
        if day < today.day:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return _safe_date(year, month, day)

    return resolve


def _agreeing_weekday(weekday: int, inner: _Resolver) -> _Resolver:
    """A date that must fall on `weekday`: "tuesday the ninth" when the ninth is a Wednesday is None."""

    def resolve(today: dt.date) -> dt.date | None:
        found = inner(today)
        return found if found is not None and found.weekday() == weekday else None

    return resolve


def _day_number(tokens: Sequence[str], *, words_must_be_ordinal: bool) -> int | None:
    """A day of the month, 1-31. Before a month or alone, words must be ordinal ("fifth", not "five")."""
    parsed = _parse_number(tokens)
    if parsed is None:
        return None
    value, ordinal = parsed
    is_digits = len(tokens) == 1 and tokens[0][:1].isdigit()
    if words_must_be_ordinal and not ordinal and not is_digits:
        return None
    return value if 1 <= value <= 31 else None


def _year(tokens: Sequence[str]) -> int | None:
    """A year: four digits, or words that make 1000-9999 ("twenty twenty seven", "two thousand ...")."""
    if len(tokens) == 1 and tokens[0][:1].isdigit():
        return int(tokens[0]) if re.fullmatch(r"\d{4}", tokens[0]) else None
    parsed = _parse_number(tokens)
    if parsed is None or parsed[1] or not 1000 <= parsed[0] <= 9999:
        return None
    return parsed[0]


def _optional_year(tokens: Sequence[str]) -> tuple[bool, int | None]:
    """(readable?, year): no tokens is readable with no year."""
    if not tokens:
        return True, None
    year = _year(tokens)
    return year is not None, year


def _match_numeric_date(token: str) -> _Resolver | None:
    """A date written in digits: ISO "2026-12-08", or US month/day "12/5", "12/5/2027", "12/5/27"."""
    iso = _ISO_RE.match(token)
    if iso:
        return _month_day(int(iso.group(2)), int(iso.group(3)), int(iso.group(1)))
    slash = _SLASH_RE.match(token)
    if not slash:
        return None
    month, day, year_text = int(slash.group(1)), int(slash.group(2)), slash.group(3)
    year = None if year_text is None else int(year_text) + (2000 if len(year_text) == 2 else 0)
    if 1 <= month <= 12 and 1 <= day <= 31:
        return _month_day(month, day, year)
    return None


def _match_calendar(tokens: Sequence[str]) -> _Resolver | None:
    """A date by the calendar: ISO, m/d[/y], month and day (either order), or an ordinal alone.

    Every way of splitting the words into day and year is tried; two different readings make the
    phrase ambiguous and it is refused rather than one being picked.
    """
    if not tokens:
        return None
    if len(tokens) == 1 and tokens[0][:1].isdigit() and not _DIGIT_ORDINAL_RE.match(tokens[0]):
        return _match_numeric_date(tokens[0])

    readings: set[tuple[int | None, int, int | None]] = set()  # (month or None for "this month", day, year)
    if tokens[0] in _MONTHS:  # "december fifth", "dec 5 2027", "december the fifth"
        month = _MONTHS[tokens[0]]
        rest = list(tokens[1:])
        if rest and rest[0] == "the":
            rest = rest[1:]
        for span in (1, 2):
            day = _day_number(rest[:span], words_must_be_ordinal=False) if len(rest) >= span else None
            ok, year = _optional_year(rest[span:])
            if day is not None and ok:
                readings.add((month, day, year))

    body = list(tokens[1:]) if tokens[0] == "the" else list(tokens)
    for span in (1, 2):  # "the fifth of december", "fifth december 2027", "5 december"
        if len(body) <= span:
            continue
        day = _day_number(body[:span], words_must_be_ordinal=True)
        rest = body[span:]
        if rest and rest[0] == "of":
            rest = rest[1:]
        if day is None or not rest or rest[0] not in _MONTHS:
            continue
        ok, year = _optional_year(rest[1:])
        if ok:
            readings.add((_MONTHS[rest[0]], day, year))

    if 1 <= len(body) <= 2:  # "the twenty third", "the 23rd"
        parsed = _parse_number(body)
        if parsed is not None and parsed[1] and 1 <= parsed[0] <= 31:
            readings.add((None, parsed[0], None))

    if len(readings) != 1:
        return None
    month_or_none, day, year = readings.pop()
    if month_or_none is None:
        return _day_of_month(day)
    return _month_day(month_or_none, day, year)


def _count(tokens: Sequence[str]) -> int | None:
    """How many of something: "a" is one, otherwise a cardinal number of at least one."""
    if list(tokens) == ["a"]:
        return 1
    parsed = _parse_number(tokens)
    if parsed is None or parsed[1] or parsed[0] < 1:
        return None
    return parsed[0]


_UNIT_DAYS: dict[str, int] = {
    "day": 1,
    "days": 1,
    "week": 7,
    "weeks": 7,
    "fortnight": 14,
    "fortnights": 14,
}
_FROM_BASE_DAYS: dict[str, int] = {"now": 0, "today": 0, "tomorrow": 1}


def _match_relative(tokens: Sequence[str]) -> _Resolver | None:
    """ "in three days", "in two weeks time", "a week from today", "three days from tomorrow"."""
    words = list(tokens)
    if words and words[0] == "in":
        body = words[1:]
        if body and body[-1] == "time":  # "in two weeks time"
            body = body[:-1]
        if len(body) >= 2 and body[-1] in _UNIT_DAYS:
            count = _count(body[:-1])
            if count is not None:
                return _plus_days(count * _UNIT_DAYS[body[-1]])
        return None
    if len(words) >= 4 and words[-2] == "from" and words[-1] in _FROM_BASE_DAYS and words[-3] in _UNIT_DAYS:
        count = _count(words[:-3])
        if count is not None:
            return _plus_days(_FROM_BASE_DAYS[words[-1]] + count * _UNIT_DAYS[words[-3]])
    return None


def _match_weekday(tokens: Sequence[str]) -> _Resolver | None:
    """Weekday phrases: "tuesday", "this/next/coming tuesday", "tuesday next week", "tuesday the 8th"."""
    words = list(tokens)
    n = len(words)
    if n == 1 and words[0] in _WEEKDAYS:
        return _weekday_from(_WEEKDAYS[words[0]], include_today=False)
    if n == 2 and words[1] in _WEEKDAYS:
        weekday = _WEEKDAYS[words[1]]
        if words[0] == "this":
            return _weekday_from(weekday, include_today=True)
        if words[0] == "next":
            return _weekday_next_week(weekday)
        if words[0] == "coming":
            return _weekday_from(weekday, include_today=False)
        return None
    if n == 3 and words[2] in _WEEKDAYS:
        weekday = _WEEKDAYS[words[2]]
        if words[:2] in (["this", "coming"], ["the", "coming"]):
            return _weekday_from(weekday, include_today=False)
        if words[:2] == ["next", "week"]:
            return _weekday_next_week(weekday)
        if words[:2] == ["this", "week"]:
            return _weekday_this_week(weekday)
        return None
    if n >= 2 and words[0] in _WEEKDAYS:
        weekday = _WEEKDAYS[words[0]]
        rest = words[1:]
        if rest in (["next", "week"], ["of", "next", "week"]):
            return _weekday_next_week(weekday)
        if rest in (["this", "week"], ["of", "this", "week"]):
            return _weekday_this_week(weekday)
        calendar = _match_calendar(rest)
        if calendar is not None:
            return _agreeing_weekday(weekday, calendar)
    return None


def _match_date_core(tokens: Sequence[str]) -> _Resolver | None:
    """All of `tokens` as one date phrase, without a part of day."""
    words = list(tokens)
    if words == ["today"]:
        return _plus_days(0)
    if words == ["tomorrow"]:
        return _plus_days(1)
    if words in (["day", "after", "tomorrow"], ["the", "day", "after", "tomorrow"]):
        return _plus_days(2)
    return _match_relative(words) or _match_weekday(words) or _match_calendar(words)


def _match_date(tokens: Sequence[str]) -> tuple[_Resolver, str | None] | None:
    """All of `tokens` as a date phrase: (resolver, part of day said with it, if any)."""
    words = list(tokens)
    if not words:
        return None
    for phrase, part in _DAYPARTS:
        if tuple(words) == phrase and phrase[0] in ("this", "tonight"):
            return _plus_days(0), part  # "this afternoon", "tonight"
    core = _match_date_core(words)
    if core is not None:
        return core, None
    for phrase, part in _DAYPARTS:
        if len(words) > len(phrase) and tuple(words[-len(phrase) :]) == phrase:
            core = _match_date_core(words[: -len(phrase)])
            if core is not None:
                return core, part
    return None


# ---------------------------------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _TimeSpec:
    """A time as said, before the half of the day is settled.

    hour: the hour said (1-12 on the 12-hour clock, 0-23 when `fixed`).
    offset: minutes after (or, negative, before) that hour: "quarter to four" is hour 4, offset -15.
    marker: "am", "pm", "morning", "afternoon", "evening" or None.
    fixed: a 24-hour clock reading, noon or midnight: no heuristic, and no marker allowed.
    anchored: unmistakably a time (marker, o'clock, colon, "half past", noon, or led by "at"), which a
        time said next to a date must be.
    """

    hour: int
    offset: int
    marker: str | None
    fixed: bool
    anchored: bool


def _hour_token(token: str) -> tuple[int, bool] | None:
    """(hour, 24-hour?) for one token: "three", "3", "15", "06"."""
    if token in _UNITS:
        return _UNITS[token], False
    if token in ("ten", "eleven", "twelve"):
        return _TEENS[token], False
    if _DIGITS_RE.match(token) and len(token) <= 2:
        hour = int(token)
        if 1 <= hour <= 12 and not (len(token) == 2 and token[0] == "0"):
            return hour, False
        if 0 <= hour <= 23:
            return hour, True
    return None


def _minutes_after_hour(tokens: Sequence[str]) -> int | None:
    """The minutes in "nine fifteen", "nine oh five", "9 05": 1-59 (or 0 for "00")."""
    words = list(tokens)
    if len(words) == 2 and words[0] in _ZERO_WORDS and words[1] in _UNITS:
        return _UNITS[words[1]]
    if len(words) == 1 and _DIGITS_RE.match(words[0]) and len(words[0]) == 2:
        minutes = int(words[0])
        return minutes if minutes <= 59 else None
    if len(words) in (1, 2) and not any(w[:1].isdigit() for w in words):
        parsed = _parse_number(words)
        if parsed is not None and not parsed[1] and 10 <= parsed[0] <= 59:
            return parsed[0]
    return None


def _minutes_in_phrase(tokens: Sequence[str]) -> int | None:
    """The minutes in "ten past", "a quarter to", "twenty five minutes after": 1-59, "half" = 30."""
    words = list(tokens)
    if words and words[-1] in ("minute", "minutes"):
        words = words[:-1]
    if words and words[0] == "a" and words[1:] == ["quarter"]:
        words = words[1:]
    if words == ["quarter"]:
        return 15
    if words == ["half"]:
        return 30
    parsed = _parse_number(words)
    if parsed is None or parsed[1] or not 1 <= parsed[0] <= 59:
        return None
    return parsed[0]


_PAST_WORDS = frozenset({"past", "after"})
_TO_WORDS = frozenset({"to", "till", "til", "of", "before"})


def _match_clock(tokens: Sequence[str]) -> tuple[int, int, bool, bool] | None:
    """(hour, offset, fixed, has its own time marker) for an hour phrase without am/pm or o'clock."""
    words = list(tokens)
    if not words:
        return None
    for i, word in enumerate(words):  # "quarter past three", "ten to four", "half past 2"
        if word in _PAST_WORDS or word in _TO_WORDS:
            if i == 0 or i != len(words) - 2:
                return None
            minutes = _minutes_in_phrase(words[:i])
            hour = _hour_token(words[-1])
            if minutes is None or hour is None or hour[1]:
                return None
            if word in _TO_WORDS and words[:i] == ["half"]:
                return None  # "half to four" is not a time
            return hour[0], minutes if word in _PAST_WORDS else -minutes, False, True
    if len(words) == 1:
        clock = _CLOCK_RE.match(words[0])
        if clock:
            hour = _hour_token(clock.group(1))
            minutes = int(clock.group(2))
            if hour is None or minutes > 59:
                return None
            return hour[0], minutes, hour[1], True
    hour = _hour_token(words[0])
    if hour is None:
        return None
    if len(words) == 1:
        return hour[0], 0, hour[1], False
    minutes = _minutes_after_hour(words[1:])
    if minutes is None:
        return None
    return hour[0], minutes, hour[1], False


def _match_time(tokens: Sequence[str]) -> _TimeSpec | None:
    """All of `tokens` as one time phrase, led by an optional "at"."""
    words = list(tokens)
    led_by_at = bool(words) and words[0] == "at"
    if led_by_at:
        words = words[1:]
    if words in (["noon"], ["midday"], ["twelve", "noon"], ["12", "noon"], ["twelve", "midday"]):
        return _TimeSpec(12, 0, None, True, True)
    if words in (["midnight"], ["twelve", "midnight"], ["12", "midnight"]):
        return _TimeSpec(0, 0, None, True, True)
    marker: str | None = None
    for phrase, name in _TIME_MARKERS:
        if len(words) > len(phrase) and tuple(words[-len(phrase) :]) == phrase:
            marker, words = name, words[: -len(phrase)]
            break
    oclock = bool(words) and words[-1] == "oclock"
    if oclock:
        words = words[:-1]
    clock = _match_clock(words)
    if clock is None:
        return None
    hour, offset, fixed, marked = clock
    if oclock and offset != 0 and not marked:
        return None  # "nine fifteen oclock"
    anchored = led_by_at or marked or oclock or marker is not None
    return _TimeSpec(hour, offset, marker, fixed, anchored)


def _hour_24(hour: int, marker: str | None) -> int | None:
    """The 24-hour hour for a 12-hour `hour` and what was said about the half of the day."""
    if marker is None:  # clinic hours: 7-11 morning, 12 noon, 1-6 afternoon
        if 7 <= hour <= 11:
            return hour
        return 12 if hour == 12 else hour + 12
    if marker == "am":
        return 0 if hour == 12 else hour
    if marker == "pm":
        return 12 if hour == 12 else hour + 12
    if marker == "morning":
        return hour if 1 <= hour <= 11 else None
    if marker == "afternoon":
        if hour == 12:
            return 12
        return hour + 12 if 1 <= hour <= 7 else None
    if marker == "evening":
        return hour + 12 if 4 <= hour <= 11 else None
    return None


def _resolve_time(spec: _TimeSpec, daypart: str | None = None) -> dt.time | None:
    """The clock time for `spec`; `daypart` is a part of day said with the date ("tomorrow morning")."""
    marker = spec.marker or daypart
    if spec.fixed:
        if spec.marker is not None:
            return None  # "15:00 pm", "0:30 am": a 24-hour reading takes no am/pm
        hour: int | None = spec.hour
    else:
        hour = _hour_24(spec.hour, marker)
    if hour is None:
        return None
    total = (hour * 60 + spec.offset) % (24 * 60)
    found = dt.time(total // 60, total % 60)
    if daypart == "morning" and found.hour >= 12:
        return None  # "tomorrow morning at three pm"
    if daypart in ("afternoon", "evening") and found.hour < 12:
        return None
    return found


# ---------------------------------------------------------------------------------------------------
# Dates and times said together
# ---------------------------------------------------------------------------------------------------


def _date_and_time_splits(tokens: Sequence[str]) -> list[tuple[tuple[_Resolver, str | None], _TimeSpec]]:
    """Every way `tokens` is a date phrase next to an anchored time phrase, in either order."""
    words = list(tokens)
    found: list[tuple[tuple[_Resolver, str | None], _TimeSpec]] = []
    for i in range(1, len(words)):
        left, right = words[:i], words[i:]
        date_first, time_after = _match_date(left), _match_time(right)
        if date_first is not None and time_after is not None and time_after.anchored:
            found.append((date_first, time_after))
        time_first, date_after = _match_time(left), _match_date(right)
        if time_first is not None and date_after is not None and time_first.anchored:
            found.append((date_after, time_first))
    return found


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """The date a caller means, on or after `today`, or None when it is not clearly one date.

    `today` is passed in (not read from the clock) so the form and the tests agree on what "tomorrow"
    is. See the module docstring for how weekdays, ordinals and years are read.
    """
    if isinstance(today, dt.datetime):
        today = today.date()
    words = _clean(text)
    if not words:
        return None
    whole = _match_date(words)
    if whole is not None:
        return whole[0](today)
    dates: set[dt.date] = set()
    for (resolver, daypart), spec in _date_and_time_splits(words):
        day = resolver(today)
        if day is not None and _resolve_time(spec, daypart) is not None:
            dates.add(day)
    return dates.pop() if len(dates) == 1 else None


def parse_time(text: str) -> dt.time | None:
    """The clock time a caller means, or None when no hour was said or it is not clearly one time.

    See the module docstring for the clinic-hours reading of a time without am/pm.
    """
    words = _clean(text)
    if not words:
        return None
    whole = _match_time(words)
    if whole is not None:
        return _resolve_time(whole)
    times: set[dt.time] = set()
    for (_, daypart), spec in _date_and_time_splits(words):
        found = _resolve_time(spec, daypart)
        if found is not None:
            times.add(found)
    return times.pop() if len(times) == 1 else None


def normalise_date(text: str, today: dt.date) -> str | None:
    """`parse_date` as the form stores it: ISO "2026-12-08", or None so the form asks again."""
    found = parse_date(text, today)
    return found.isoformat() if found is not None else None


# Whisper writes "three thirty" as "330" and "ten fifteen" as "1015": hour and minutes run together.
_RUN_TOGETHER_TIME = re.compile(r"\b([1-9]|1[0-2])([0-5]\d)\b")
# ...and sometimes as "3-30".
_HYPHENATED_TIME = re.compile(r"\b([1-9]|1[0-2])-([0-5]\d)\b")


def normalise_time(text: str) -> str | None:
    """`parse_time` as the form stores it: 24-hour "15:30", or None so the form asks again."""
    found = parse_time(text)
    if found is None and isinstance(text, str):
        joined = _HYPHENATED_TIME.sub(r"\1:\2", _RUN_TOGETHER_TIME.sub(r"\1:\2", text))
        if joined != text:
            found = parse_time(joined)
    return found.strftime("%H:%M") if found is not None else None
