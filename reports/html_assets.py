"""The inline style sheet and script of the HTML report (``html.py``).

Everything is inline: the page needs no network. The script only adds sorting
to tables marked ``sortable``; every figure is in the markup without it.
"""

from __future__ import annotations

STYLE = """
:root { --neg: #b3261e; --pos: #1f5fbf; --ok: #1b6e3a; --ink: #1d1d1f; --muted: #5a5a60;
  --rule: #d4d4d8; --head: #f2f2f5; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 78rem; padding: 1.5rem; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 1.5rem; margin: 0 0 .75rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; break-after: avoid; page-break-after: avoid; }
code, .num, .id { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: .92em; }
.verdict { border: 3px solid; border-radius: 6px; padding: .75rem 1rem; margin: 0 0 1rem; }
.verdict.match { border-color: var(--ok); }
.verdict.mismatch { border-color: var(--neg); }
.verdict .word { font-size: 1.6rem; font-weight: 700; letter-spacing: .04em; margin-right: .5rem; }
.verdict.match .word { color: var(--ok); }
.verdict.mismatch .word { color: var(--neg); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.facts dd code { white-space: nowrap; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .25rem 0 .5rem; }
caption { caption-side: bottom; text-align: left; color: var(--muted); padding-top: .25rem; }
th, td { border-bottom: 1px solid var(--rule); padding: .25rem .45rem; vertical-align: middle; }
th { background: var(--head); text-align: left; font-weight: 600; vertical-align: bottom; }
th.r, td.num { text-align: right; }
td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.text { overflow-wrap: anywhere; min-width: 6rem; }
.frac { display: inline-block; text-align: left; }
.neg { color: var(--neg); }
.pos { color: var(--pos); }
.status { font-weight: 700; font-size: .85em; letter-spacing: .03em; }
.status.match { color: var(--ok); }
.status.missing { color: var(--neg); }
.status.extra { color: #7b2d8e; }
.status.changed { color: #8a5a00; }
svg.bar { display: block; }
svg.bar .neg { fill: var(--neg); }
svg.bar .pos { fill: var(--pos); }
svg.bar .both { fill: var(--ok); }
svg.bar .axis { stroke: var(--muted); stroke-width: 1; }
th button { font: inherit; color: inherit; background: none; border: 0; padding: 0;
  cursor: pointer; text-align: inherit; }
th button::after { content: "\\00a0\\2195"; color: var(--muted); }
th[aria-sort=ascending] button::after { content: "\\00a0\\2191"; }
th[aria-sort=descending] button::after { content: "\\00a0\\2193"; }
pre { background: var(--head); padding: .5rem .75rem; border-radius: 4px; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: .25rem 0; }
.muted, footer { color: var(--muted); }
footer { margin-top: 2rem; font-size: .85em; }
@media print {
  @page { margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 10pt; background: #fff; color: #000; }
  .scroll { overflow: visible; }
  table { font-size: 8.5pt; }
  th { background: #fff; border-bottom: 1.5px solid #000; }
  thead { display: table-header-group; }
  tr, .verdict, dl.facts, pre { break-inside: avoid; page-break-inside: avoid; }
  th button { display: contents; }  /* a repeated heading does not paint a button */
  th button::after { content: ""; }
  .sort-hint { display: none; }
  svg.bar, .verdict { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  pre { background: #fff; border: 1px solid #999; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  // Exact comparison of decimal strings ("-12,345.67"): no floating point.
  function parts(s) {
    s = s.replace(/[,\\s+]/g, "");
    var neg = s.charAt(0) === "-";
    if (neg) s = s.slice(1);
    var dot = s.indexOf(".");
    var i = dot < 0 ? s : s.slice(0, dot), f = dot < 0 ? "" : s.slice(dot + 1);
    i = i.replace(/^0+/, "");
    f = f.replace(/0+$/, "");
    if (!i && !f) neg = false;
    return { neg: neg, i: i, f: f };
  }
  function magnitude(a, b) {
    if (a.i.length !== b.i.length) return a.i.length < b.i.length ? -1 : 1;
    if (a.i !== b.i) return a.i < b.i ? -1 : 1;
    var n = Math.max(a.f.length, b.f.length);
    var fa = a.f + "0".repeat(n - a.f.length), fb = b.f + "0".repeat(n - b.f.length);
    return fa === fb ? 0 : (fa < fb ? -1 : 1);
  }
  function compareDecimal(x, y) {
    var a = parts(x), b = parts(y);
    if (a.neg !== b.neg) return a.neg ? -1 : 1;
    var m = magnitude(a, b);
    return a.neg ? -m : m;
  }
  function value(row, index) {
    var cell = row.cells[index];
    return cell.getAttribute("data-value") || cell.textContent.trim();
  }
  function sortBy(table, th, index) {
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = value(r1, index), b = value(r2, index);
      var c = numeric ? compareDecimal(a, b) : (a < b ? -1 : (a > b ? 1 : 0));
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.querySelectorAll(".sort-hint"), function (hint) {
      hint.hidden = false;
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (!th.hasAttribute("data-type")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.title = "sort by " + th.textContent.trim();
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, th, index); });
    });
  });
})();
"""
