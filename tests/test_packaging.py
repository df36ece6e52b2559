"""Installed, eventfold is the single package `eventfold`: editable and as a wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERIC = [
    "application",
    "commands",
    "domain",
    "infra",
    "projections",
    "reports",
    "cli",
    "storedemo",
    "tests",
    "benchmarks",
]
PROBE = (
    "import importlib.util as u, eventfold.infra.filestore as f;"
    f"bad = [n for n in {GENERIC!r} if u.find_spec(n)];"
    "assert not bad, bad; print(f.__file__)"
)


def test_editable_install_exposes_only_eventfold(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(ROOT / "infra" / "filestore" / "__init__.py")


def test_wheel_holds_only_the_eventfold_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("eventfold-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"eventfold", wheel.name.split("-py")[0] + ".dist-info"}
    for module in (
        "infra/filestore/__init__.py",
        "infra/filestore/log.py",
        "domain/model.py",
        "cli.py",
    ):
        assert f"eventfold/{module}" in names
    assert not any("/tests/" in n or "/benchmarks/" in n for n in names)
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "eventfold = eventfold.cli:main" in entry_points

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {PROBE}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(target))
