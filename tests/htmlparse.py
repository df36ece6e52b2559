"""Reading an HTML report as a browser would structure it, with the standard library's parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

BLOCKS = {
    "dt",
    "dd",
    "td",
    "th",
    "tr",
    "p",
    "li",
    "h1",
    "h2",
    "section",
    "div",
    "caption",
    "pre",
    "dl",
    "ul",
    "header",
    "footer",
    "main",
    "table",
}
VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source", "wbr"}


@dataclass
class Page:
    title: str = ""
    texts: dict[str, str] = field(default_factory=dict)  # element id -> its text
    tables: dict[str, list[list[str]]] = field(default_factory=dict)  # id -> rows of cell texts
    cells: dict[str, list[list[dict[str, str]]]] = field(default_factory=dict)  # cell attributes
    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # every start tag
    visible: str = ""  # the text outside <script>, <style> and <title>


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[tuple[str, str | None]] = []  # (tag, id)
        self.open_ids: dict[str, list[str]] = {}
        self.table: str | None = None
        self.cell: list[str] | None = None
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.page.tags.append((tag, attributes))
        self._gap(tag)
        if tag in VOID:
            return
        element_id = attributes.get("id")
        self.stack.append((tag, element_id))
        if element_id:
            self.open_ids[element_id] = []
        if tag == "table" and element_id:
            self.table = element_id
            self.page.tables[element_id] = []
            self.page.cells[element_id] = []
        elif tag == "tr" and self.table:
            self.page.tables[self.table].append([])
            self.page.cells[self.table].append([])
        elif tag in ("td", "th") and self.table:
            self.cell = []
            self.page.cells[self.table][-1].append(attributes)

    def _gap(self, tag: str) -> None:
        """A block's edge separates words, as a browser lays it out."""
        if tag in BLOCKS:
            self.visible.append(" ")
            for parts in self.open_ids.values():
                parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        self._gap(tag)
        while self.stack:
            open_tag, element_id = self.stack.pop()
            if element_id:
                self.page.texts[element_id] = " ".join("".join(self.open_ids[element_id]).split())
            if open_tag == tag:
                break
        if tag in ("td", "th") and self.table and self.cell is not None:
            self.page.tables[self.table][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        tags = [t for t, _ in self.stack]
        if "title" in tags:
            self.page.title += data
        if any(t in ("script", "style", "title") for t in tags):
            return
        self.visible.append(data)
        for element_id in self.open_ids:
            if any(i == element_id for _, i in self.stack):
                self.open_ids[element_id].append(data)
        if self.cell is not None:
            self.cell.append(data)


def parse(text: str) -> Page:
    reader = _Reader()
    reader.feed(text)
    reader.close()
    reader.page.visible = " ".join("".join(reader.visible).split())
    return reader.page
