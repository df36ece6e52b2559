"""The SVG picture of a terminal report (``--svg FILE``), via Rich's recording console.

Rich writes box-drawing characters as text, with a line height (1.22 em) taller
than the glyphs of most monospace fonts, so vertical rules show a gap between
rows in browsers (Chromium, Firefox). Here each light, heavy or rounded
box-drawing character is drawn instead as lines from its cell's centre to its
cell's edges, which meet the next row's exactly; the character becomes a space.
Other characters (double and dashed lines among them) stay text.
"""

from __future__ import annotations

import html
import io
import re
import unicodedata
from functools import cache

from rich.cells import cell_len
from rich.console import Console, RenderableType

WIDTH = 120
LIGHT, HEAVY = 1.5, 3.2  # stroke widths, for Rich's 20 px font
BASELINE = 20  # Rich's font size: the first row's baseline
FOREGROUND = "#c5c8c6"  # Rich's default SVG theme, for text without a fill of its own

_TEXT = re.compile(
    r'<text class="(?P<cls>[^"]*)" x="(?P<x>[\d.]+)" y="(?P<y>[\d.]+)" '
    r'textLength="(?P<length>[\d.]+)"(?P<rest>[^>]*)>(?P<body>[^<]*)</text>'
)
_RULE = re.compile(r"\.(?P<cls>[\w-]+) \{ (?P<css>[^}]*)\}")
_FILL = re.compile(r"fill: (#[0-9a-fA-F]{6})")
_CLIP_Y = re.compile(r'<clipPath id="[\w-]+-line-(?P<n>[01])">\s*<rect x="0" y="(?P<y>[\d.]+)"')
_WEIGHTS = {"LIGHT": LIGHT, "SINGLE": LIGHT, "HEAVY": HEAVY}
_DIRECTIONS = {
    "UP": ("up",),
    "DOWN": ("down",),
    "LEFT": ("left",),
    "RIGHT": ("right",),
    "VERTICAL": ("up", "down"),
    "HORIZONTAL": ("left", "right"),
}


def render_svg(rendered: RenderableType, *, title: str) -> str:
    """``rendered`` as Rich draws it at ``WIDTH`` columns, as an SVG document whose
    box-drawing lines join between rows."""
    recorder = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True)
    recorder.print(rendered)
    return join_box_lines(recorder.export_svg(title=title))


@cache
def arms(char: str) -> tuple[tuple[tuple[str, float], ...], bool] | None:
    """The arms of a box-drawing character, ``((direction, stroke width), ...)``, and
    whether its corner is rounded; None for a character not drawn here."""
    name = unicodedata.name(char, "")
    if not name.startswith("BOX DRAWINGS ") or any(
        word in name for word in ("DOUBLE", "DASH", "DIAGONAL")
    ):
        return None
    words = name.removeprefix("BOX DRAWINGS ").split()
    found: list[tuple[str, float]] = []
    pending: list[str] = []
    weight = LIGHT
    for word in words:
        if word in _WEIGHTS:
            if pending:  # "DOWN LIGHT AND RIGHT HEAVY": the weight follows its directions
                found += [(d, _WEIGHTS[word]) for d in pending]
                pending = []
            else:  # "LIGHT DOWN AND RIGHT": the weight precedes them
                weight = _WEIGHTS[word]
        elif word in _DIRECTIONS:
            pending += _DIRECTIONS[word]
        elif word not in ("AND", "ARC"):
            return None
    found += [(d, weight) for d in pending]
    return (tuple(found), "ARC" in words) if found else None


def join_box_lines(svg: str) -> str:
    """Rich's SVG with its box-drawing characters drawn as joined lines."""
    fills = {m["cls"]: m["css"] for m in _RULE.finditer(svg)}
    clips = {m["n"]: float(m["y"]) for m in _CLIP_Y.finditer(svg)}
    line_height = clips["1"] - clips["0"] if len(clips) == 2 else 24.4
    top_offset = clips.get("0", 1.5)
    drawn: list[str] = []

    def replace(match: re.Match[str]) -> str:
        text = html.unescape(match["body"])
        if not any(arms(c) for c in text):
            return match[0]
        fill = _FILL.search(fills.get(match["cls"], ""))
        colour = fill.group(1) if fill else FOREGROUND
        char_width = float(match["length"]) / max(cell_len(text), 1)
        row = round((float(match["y"]) - BASELINE) / line_height)
        top = row * line_height + top_offset
        kept = []
        for index, char in enumerate(text):
            shape = arms(char)
            if shape is None:
                kept.append(char)
                continue
            left = float(match["x"]) + cell_len(text[:index]) * char_width
            drawn.append(_draw(shape, left, top, char_width, line_height, colour))
            kept.append("\u00a0")
        body = html.escape("".join(kept), quote=False).replace(" ", "&#160;")
        return (
            f'<text class="{match["cls"]}" x="{match["x"]}" y="{match["y"]}" '
            f'textLength="{match["length"]}"{match["rest"]}>{body}</text>'
        )

    matrix = _TEXT.sub(replace, svg)
    if not drawn:
        return svg
    lines = '<g class="box-lines" fill="none">' + "".join(drawn) + "</g>"
    end = matrix.rindex("</g>\n    </g>")  # the end of the matrix group, inside the terminal
    return matrix[:end] + lines + matrix[end:]


def _draw(
    shape: tuple[tuple[tuple[str, float], ...], bool],
    left: float,
    top: float,
    width: float,
    height: float,
    colour: str,
) -> str:
    """Lines from the cell's centre to the middle of each edge an arm points at; vertical
    lines overshoot the cell by half a pixel so that rows overlap."""
    cx, cy = left + width / 2, top + height / 2
    ends = {
        "up": (cx, top - 0.5),
        "down": (cx, top + height + 0.5),
        "left": (left, cy),
        "right": (left + width, cy),
    }
    directions, rounded = shape
    if rounded and len(directions) == 2:
        (d1, stroke), (d2, _) = directions
        (x1, y1), (x2, y2) = ends[d1], ends[d2]
        return (
            f'<path d="M{x1:.2f},{y1:.2f} Q{cx:.2f},{cy:.2f} {x2:.2f},{y2:.2f}" '
            f'stroke="{colour}" stroke-width="{stroke}"/>'
        )
    return "".join(
        f'<line x1="{cx:.2f}" y1="{cy:.2f}" x2="{x:.2f}" y2="{y:.2f}" stroke="{colour}" '
        f'stroke-width="{stroke}" stroke-linecap="square"/>'
        for direction, stroke in directions
        for x, y in [ends[direction]]
    )
