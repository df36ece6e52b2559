"""Numbers as an expected file writes them, read exactly (never through a float).

By default a number is plain: an optional sign, digits, an optional point and
fraction, an optional exponent (``-1234.5``, ``1e3``). A ``NumberFormat``
made from an example (``--number-format '1.234,56 €'``) says which character
groups thousands, which one marks the fraction and which currency symbol may
stand before or after the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MIN_EXPONENT, MAX_EXPONENT = -6143, 6144  # as ingest accepts values (application/ingest/rules.py)
PLAIN = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
SPACES = (" ", "\u00a0", "\u202f")  # a space, a no-break space, a narrow no-break space
GROUP_MARKS = (",", ".", "'", "_", *SPACES)
EXAMPLE = re.compile(
    r"(?P<before>[^\d\s.,'_-]*)\s?1(?P<group>[^\d]?)234(?P<point>[.,])56\s?(?P<after>[^\d\s.,'_]*)"
)


class NumberError(ValueError):
    """A value that is not a number in the format given; the message says why."""


@dataclass(frozen=True)
class NumberFormat:
    """How numbers are written: the thousands mark (or none), the decimal mark and the
    currency symbol that may lead or trail (or none)."""

    group: str = ""
    point: str = "."
    currency: str = ""
    example: str = "1234.56"

    @classmethod
    def parse(cls, example: str) -> NumberFormat:
        """A format from how 1234.56 is written in it (``1,234.56``, ``1.234,56``,
        ``1 234,56``, ``$1,234.56``, ``1234,56 €``). ``ValueError`` names what is wrong."""
        found = EXAMPLE.fullmatch(example.strip())
        if found is None:
            msg = (
                f"{example!r} is not the number 1234.56 written in a format "
                "(for example '1,234.56', '1.234,56', '1 234,56', '$1,234.56', '1234,56 €')"
            )
            raise ValueError(msg)
        group, point = found["group"], found["point"]
        before, after = found["before"], found["after"]
        if group and group not in GROUP_MARKS:
            msg = f"{example!r}: {group!r} cannot group thousands (one of , . ' _ or a space can)"
            raise ValueError(msg)
        if group == point:
            msg = f"{example!r}: the same mark {point!r} groups thousands and marks the fraction"
            raise ValueError(msg)
        if before and after:
            msg = f"{example!r}: a currency symbol before and after the number"
            raise ValueError(msg)
        return cls(group, point, before or after, example.strip())

    @property
    def plain(self) -> bool:
        return not self.group and self.point == "." and not self.currency

    def read(self, text: str) -> Decimal:
        """The exact value of ``text``; ``NumberError`` says why it is not a number here
        (its exponent too: within the range ingest accepts, IEEE decimal128's)."""
        value = text.strip()
        if self.plain and not PLAIN.fullmatch(value):
            raise NumberError(_why_not_plain(value))
        normalised = value if self.plain else self._normalised(value)
        try:
            return in_range(value, Decimal(normalised))
        except InvalidOperation:  # beyond what a decimal can hold at all
            raise NumberError(f"{value!r}: exponent out of range") from None

    def _normalised(self, value: str) -> str:
        sign = ""
        body = value
        if self.group in SPACES:  # a space groups as a no-break or narrow one does
            for space in SPACES:
                body = body.replace(space, self.group)
        for _ in range(2):  # a sign and a currency symbol, in either order
            if body and body[0] in "+-":
                sign, body = body[0], body[1:].lstrip()
            if self.currency and body.startswith(self.currency):
                body = body[len(self.currency) :].lstrip()
        if self.currency and body.endswith(self.currency):
            body = body[: -len(self.currency)].rstrip()
        whole, point, fraction = body.partition(self.point)
        if self.group and self.group in whole:
            groups = whole.split(self.group)
            if not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
                msg = f"{value!r}: thousands are not grouped by {self.group!r} in threes"
                raise NumberError(msg)
            whole = "".join(groups)
        text = f"{sign}{whole}{'.' if point else ''}{fraction}"
        if not PLAIN.fullmatch(text) or "e" in text.lower():
            msg = f"{value!r} is not a number written as {self.example!r}"
            raise NumberError(msg)
        return text


class JSONNumber(str):
    """A JSON number kept as its text (``json.loads``' ``parse_float``/``parse_int``), read
    where its row and column are known."""


def in_range(text: str, value: Decimal) -> Decimal:
    """``value``, when its adjusted exponent is one ingest accepts; else ``NumberError``."""
    if value and not MIN_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        msg = f"{text!r}: exponent out of range [{MIN_EXPONENT}, {MAX_EXPONENT}]"
        raise NumberError(msg)
    return value


def _why_not_plain(value: str) -> str:
    """Why ``value`` is refused as a plain number, with what to do."""
    hint = "use --number-format to say how numbers are written, e.g. --number-format '1,234.56'"
    if not value:
        return "empty, not a number"
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", value) or re.fullmatch(
        r"[+-]?\d{1,3}([.\s\u00a0\u202f']\d{3})+(,\d*)?", value
    ):
        return f"{value!r} has a thousands separator: {hint}"
    if re.fullmatch(r"[+-]?\d+,\d+", value):
        return f"{value!r} has a decimal comma: {hint.replace('1,234.56', '1234,56')}"
    if re.search(r"\d", value) and re.search(r"[^\d\s.,+\-eE]", value):
        return f"{value!r} has a currency symbol or other text: {hint.replace('1,234', '$1,234')}"
    try:
        Decimal(value)
    except InvalidOperation:
        return f"{value!r} is not a number"
    return f"{value!r} is not a plain decimal number (digits, a point, maybe an exponent)"
