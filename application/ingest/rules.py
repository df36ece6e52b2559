"""The rules of a source line (README, "Source format"): valid event, or why not.

``parse_event`` turns one line into a ``SourceEvent`` or the reason it is
invalid; it never raises, whatever the line holds (``lines.py`` splits a
source into lines).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any, NamedTuple

import msgspec

# Accepted values have an adjusted exponent in this range (IEEE decimal128's),
# so that exact sums stay a reasonable size whatever the input.
MIN_EXPONENT, MAX_EXPONENT = -6143, 6144
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOT_UTF8, NOT_JSON, NOT_OBJECT = "not valid UTF-8", "not valid JSON", "not a JSON object"

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_ERROR_BYTE = re.compile(r"\(byte (\d+)\)$")  # where msgspec's DecodeError says it failed


class SourceEvent(NamedTuple):
    """One valid source event. ``occurred_at`` is UTC, or None when not given.

    ``occurred_iso`` is ``occurred_at.isoformat()`` (computed once, cheaply
    for the common shapes): the form the store writes.
    """

    event_id: str
    category: str
    value: Decimal
    occurred_at: datetime | None
    occurred_iso: str | None = None

    def same_content(self, other: SourceEvent) -> bool:
        """Same category, numerically equal value and the same instant (or neither has one)."""
        return (
            self.category == other.category
            and self.value == other.value
            and self.occurred_iso == other.occurred_iso
        )


# ``SourceEvent(...)`` runs a Python ``__new__``; this is the same tuple, made in C.
_new: Callable[[type[SourceEvent], tuple[Any, ...]], SourceEvent] = tuple.__new__


def is_whole_object(parsed: SourceEvent | str) -> bool:
    """Whether a line parsed to a JSON object (valid by the rules or not).

    An unterminated last line that is not yet a whole object may still be
    being written: it is left pending rather than quarantined.
    """
    return isinstance(parsed, SourceEvent) or not parsed.startswith(
        (NOT_JSON, NOT_UTF8, NOT_OBJECT)
    )


def is_blank(raw: bytes) -> bool:
    return not raw.strip(b" \t\r")


def parse_event(raw: bytes) -> SourceEvent | str:
    """The event on one line, or why the line is invalid (never raises).

    The decoder rejects invalid UTF-8, lone surrogate escapes, ``NaN`` and
    ``Infinity``; numbers with a fraction or exponent arrive as exact decimals.
    """
    try:
        doc = _decoder.decode(raw)
    except UnicodeDecodeError:
        return NOT_UTF8
    except msgspec.ValidationError:  # an integer past int's text limit: read it as text
        doc = _decode_wide(raw)
        if type(doc) is str:
            return doc
    except msgspec.DecodeError as e:
        return f"{NOT_JSON} ({_bom_at_fault(raw, str(e)) or e})"
    except RecursionError:
        return f"{NOT_JSON} (nested too deeply)"
    except Exception as e:  # any other failure of the parser on this line is the line's
        return f"{NOT_JSON} ({type(e).__name__}: {e})"
    if type(doc) is not dict:
        return f"{NOT_OBJECT} ({_what(_json_type(doc))})"
    event_id = doc.get("id")
    if type(event_id) is str:
        if not event_id:
            return "id: empty string"
    elif type(event_id) is int:
        event_id = str(event_id)
    elif event_id is None:
        return "id: missing"
    else:
        return f"id: a {_json_type(event_id)}, not a string or integer"
    category = doc.get("category")
    if type(category) is not str or not category:
        return "category: " + ("missing" if category is None else "not a non-empty string")
    value = doc.get("value")
    if type(value) is not Decimal:
        if type(value) is not int:
            if value is None:
                return "value: missing"
            return f"value: a {_json_type(value)}, not a number"
        value = Decimal(value)
    if not MIN_EXPONENT <= value.adjusted() <= MAX_EXPONENT:  # zero too: see the README
        return f"value: exponent out of range [{MIN_EXPONENT}, {MAX_EXPONENT}]"
    stamp = doc.get("timestamp")
    if stamp is None:
        return _new(SourceEvent, (event_id, category, value, None, None))
    return _timed(event_id, category, value, stamp)


def _bom_at_fault(raw: bytes, error: str) -> str | None:
    """Name a byte order mark where the decoder failed (one is accepted only at the very
    start of a source, where the line reader skips it)."""
    found = _ERROR_BYTE.search(error)
    if found is None or raw[int(found[1]) : int(found[1]) + 3] != b"\xef\xbb\xbf":
        return None
    return f"byte order mark (U+FEFF) inside a line, at byte {int(found[1]):,}"


def _timed(event_id: str, category: str, value: Decimal, stamp: object) -> SourceEvent | str:
    """The event with its timestamp field, or why the timestamp is invalid."""
    if type(stamp) is str and len(stamp) == 20 and stamp[4::3] == "--T::Z":
        # The usual shape, YYYY-MM-DDTHH:MM:SSZ: its isoformat() is read off the text.
        try:
            usual = datetime.fromisoformat(stamp)
        except ValueError:
            pass  # not a real date or time: ``_timestamp`` says why
        else:
            return _new(SourceEvent, (event_id, category, value, usual, stamp[:19] + "+00:00"))
    occurred_at = _timestamp(stamp)
    if type(occurred_at) is str:
        return occurred_at
    assert isinstance(occurred_at, datetime)
    return _new(SourceEvent, (event_id, category, value, occurred_at, occurred_at.isoformat()))


_MSGSPEC_TYPES = {"str": "string", "int": "number", "float": "number", "bool": "boolean"}


def _what(json_type: str) -> str:
    """``an array``, ``a string``, ``null``: a JSON type as the reason names it."""
    if json_type == "null":
        return "null"
    return ("an " if json_type[:1] in "aeiou" else "a ") + json_type


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "number"


def _timestamp(value: object) -> datetime | str:
    """The instant of a timestamp field (UTC), or why it is invalid."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            return f"timestamp: not ISO 8601 ({value[:40]!r})"
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return f"timestamp: a {_json_type(value)}, not ISO 8601 or epoch seconds"
    seconds = Decimal(value)
    if not seconds.is_finite() or not -62135596800 <= seconds < 253402300800:
        return "timestamp: epoch seconds out of range"
    with localcontext() as ctx:  # exact: fractions below a microsecond are dropped, not rounded
        ctx.prec = len(seconds.as_tuple().digits) + 20
        micros = int((seconds * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
    return EPOCH + timedelta(microseconds=micros)


class _Fields(msgspec.Struct):
    """A line's rule fields as raw JSON, for lines whose numbers Python's int will not read."""

    id: msgspec.Raw = msgspec.Raw(b"")  # empty: the field is absent
    category: msgspec.Raw = msgspec.Raw(b"")
    value: msgspec.Raw = msgspec.Raw(b"")
    timestamp: msgspec.Raw = msgspec.Raw(b"")


_decode_fields = msgspec.json.Decoder(_Fields).decode
_INTEGER = re.compile(rb"-?[0-9]+")


def _decode_wide(raw: bytes) -> dict[str, Any] | str:
    """A line with an integer of more digits than Python's int reads from text (4,300).

    The rule fields are decoded one by one: such an integer is an id's decimal string
    (``-0`` is ``0``), or an exact ``Decimal`` anywhere else; other fields are ignored
    (as always), however long their numbers.
    """
    try:
        fields = _decode_fields(raw)
    except msgspec.ValidationError as e:
        kind = str(e).rpartition("got `")[2].partition("`")[0]
        return f"{NOT_OBJECT} ({_what(_MSGSPEC_TYPES.get(kind, kind))})"
    except Exception as e:
        return f"{NOT_JSON} ({type(e).__name__}: {e})"
    doc: dict[str, Any] = {}
    for name in _Fields.__struct_fields__:
        text = bytes(getattr(fields, name))
        if not text:
            continue
        if _INTEGER.fullmatch(text):
            digits = text.decode()
            if name == "id":
                doc[name] = "0" if digits == "-0" else digits
            else:
                doc[name] = Decimal(digits)
        else:
            try:
                doc[name] = _decoder.decode(text)
            except msgspec.ValidationError:  # such an integer inside: an array or an object
                doc[name] = [] if text.startswith(b"[") else {}
    return doc
