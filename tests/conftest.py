"""Shared fixtures: stores in temporary directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventfold.infra.filestore import FileStoreFactory


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def factory(store_path: Path) -> Iterator[FileStoreFactory]:
    f = FileStoreFactory({"FILESTORE_PATH": str(store_path)})
    yield f
    f.close()
