"""The library's application test cases, with PERSISTENCE_MODULE set to the file store."""

from __future__ import annotations

import os
import shutil
import tempfile

from eventsourcing.tests.application import (
    ApplicationTestCase,
    ExampleApplicationTestCase,
)


class WithFileStore:
    expected_factory_topic = "eventfold.infra.filestore:FileStoreFactory"

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.store_dir = tempfile.mkdtemp(prefix="eventfold-app-")
        os.environ["PERSISTENCE_MODULE"] = "eventfold.infra.filestore"
        os.environ["FILESTORE_PATH"] = self.store_dir

    def tearDown(self) -> None:
        del os.environ["PERSISTENCE_MODULE"]
        del os.environ["FILESTORE_PATH"]
        shutil.rmtree(self.store_dir, ignore_errors=True)
        super().tearDown()  # type: ignore[misc]


class TestExampleApplicationWithFileStore(WithFileStore, ExampleApplicationTestCase):
    pass


class TestApplicationWithFileStore(WithFileStore, ApplicationTestCase):
    pass


del ApplicationTestCase
del ExampleApplicationTestCase
