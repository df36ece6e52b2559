"""A real headless browser (Debian's ``chromium``) for what a person sees of a report.

Tests call ``require_browser()``: it skips when chromium (or ``pdftotext``) is
missing, and fails instead when ``EVENTFOLD_REQUIRE_BROWSER=1`` (``.ci/run``
installs them with ``.ci/browser-up``).

Run as a script, it makes the README's picture of the HTML report from the
demo's data: ``.venv/bin/python tests/browser.py docs/report.png``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

DEADLINE = 120  # seconds: only turns a hung browser into a failure
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    """The browser's path; a skip (a failure with ``EVENTFOLD_REQUIRE_BROWSER=1``) when
    chromium or pdftotext is missing."""
    browser = chromium()
    missing = [
        name
        for name, path in (("chromium", browser), ("pdftotext", shutil.which("pdftotext")))
        if not path
    ]
    if missing:
        msg = f"{' and '.join(missing)} not installed (.ci/browser-up installs them)"
        if os.environ.get("EVENTFOLD_REQUIRE_BROWSER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    assert browser is not None
    return browser


def _run(browser: str, *args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    command = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, timeout=DEADLINE, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


def print_to_pdf(browser: str, page: Path, work: Path) -> Path:
    """``page`` printed to PDF by the browser (what is visible on paper)."""
    pdf = work / "page.pdf"
    _run(
        browser,
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf}",
        page.as_uri(),
        profile=work / "profile",
    )
    return pdf


def pdf_text(pdf: Path) -> str:
    """The text of a PDF, page by page (pages split by form feeds), by pdftotext."""
    done = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, timeout=DEADLINE, check=True
    )
    return done.stdout.decode()


def pdf_title(pdf: Path) -> str:
    """The document title the browser gave the PDF (the page's ``<title>``), by pdfinfo."""
    done = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, timeout=DEADLINE, check=True)
    for line in done.stdout.decode().splitlines():
        if line.startswith("Title:"):
            return line.removeprefix("Title:").strip()
    return ""


def dom_after_scripts(browser: str, page: Path, work: Path) -> str:
    """The page's DOM after its scripts ran."""
    done = _run(browser, "--dump-dom", page.as_uri(), profile=work / "profile")
    return done.stdout.decode()


def screenshot(browser: str, page: Path, png: Path, width: int = 1100, height: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as work:
        _run(
            browser,
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            page.as_uri(),
            profile=Path(work) / "profile",
        )


def demo_report(directory: Path) -> Path:
    """The HTML report of a mismatch on the demo's data: the worker's feed (which lost a
    slice of lines) ingested into a store and verified against the bus archive."""

    def eventfold(*args: str) -> int:
        command = [sys.executable, "-m", "eventfold", *args]
        done = subprocess.run(command, cwd=directory, capture_output=True, timeout=600, check=False)
        assert done.returncode in (0, 1), done.stderr.decode(errors="replace")
        return done.returncode

    eventfold("demo", "--dir", "demo")
    eventfold("ingest", "demo/worker-feed.jsonl", "--store", "store")
    code = eventfold(
        "verify", "--store", "store", "--source", "demo/events.jsonl", "--html", "report.html"
    )
    assert code == 1, "the worker's feed lost events: verify must find a mismatch"
    return directory / "report.html"


def main(argv: list[str]) -> int:
    """``browser.py PNG``: the picture of the demo's HTML report, for the README."""
    browser = chromium()
    if browser is None:
        print("chromium is not installed (.ci/browser-up installs it)", file=sys.stderr)
        return 2
    png = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory() as work:
        report = demo_report(Path(work))
        screenshot(browser, report, png)
    print(f"{png}: {png.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
