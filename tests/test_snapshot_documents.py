"""Both backends keep a projection's snapshot documents by one contract (``SnapshotDocuments``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventfold.application.app import open_app
from eventfold.infra.backends import SnapshotDocuments
from processes import HANG


@pytest.fixture(params=["file", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        request.getfixturevalue("postgres")
    name: str = request.param
    return name


@pytest.fixture
def documents(backend: str, tmp_path: Path) -> Iterator[SnapshotDocuments]:
    app = open_app(str(tmp_path / "store"), backend)
    try:
        yield app.backend.snapshot_documents("contract", keep=2)
    finally:
        app.close()


def test_no_generation_is_current_before_the_first_switch(documents: SnapshotDocuments) -> None:
    assert documents.current() is None
    generation = documents.new_generation()
    assert documents.current() is None and documents.documents(generation) == []


def test_documents_come_newest_first_and_only_the_newest_are_kept(
    documents: SnapshotDocuments,
) -> None:
    generation = documents.new_generation()
    where = [documents.put(generation, position, b'{"n": %d}' % position) for position in (5, 9, 7)]
    assert len(set(where)) == 3
    kept = documents.documents(generation)
    assert [d.position for d in kept] == [9, 7]  # keep=2
    assert [d.read().strip() for d in kept] == [b'{"n": 9}', b'{"n": 7}']
    assert kept[0].where == where[1]


def test_a_switch_makes_one_generation_current_and_drops_the_others(
    documents: SnapshotDocuments,
) -> None:
    old = documents.new_generation()
    documents.put(old, 1, b"{}")
    documents.switch(old)
    new = documents.new_generation()
    assert new != old and documents.current() == old  # until the switch
    documents.put(new, 2, b"{}")
    documents.switch(new)
    assert documents.current() == new
    assert documents.documents(old) == []
    abandoned = documents.new_generation()
    documents.put(abandoned, 3, b"{}")
    again = documents.new_generation()  # a crashed rebuild's generation is dropped
    assert documents.documents(abandoned) == [] and documents.current() == new
    assert again not in (old, new)


def test_one_holder_of_the_lock_at_a_time(
    documents: SnapshotDocuments, backend: str, tmp_path: Path
) -> None:
    release = documents.try_lock()
    assert release is not None
    try:
        # Another process (a lock may be re-entrant within one) cannot take it.
        probe = (
            "import sys; from eventfold.application.app import open_app;"
            "app = open_app(sys.argv[1], sys.argv[2]);"
            "print(app.backend.snapshot_documents('contract', 2).try_lock() is None)"
        )
        other = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path / "store"), backend],
            capture_output=True,
            text=True,
            timeout=HANG,
            check=False,
        )
        assert other.stdout.strip() == "True", other.stderr
        assert documents.lock_holder()
    finally:
        release()
    again = documents.try_lock()
    assert again is not None
    again()
