"""The eventsourcing library's own persistence test cases, run on the file store."""

from __future__ import annotations

import shutil
import tempfile

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from eventfold.infra.filestore import (
    FileAggregateRecorder,
    FileApplicationRecorder,
    FileProcessRecorder,
    FileStoreFactory,
    FileTrackingRecorder,
)


class WithStore:
    """Each test gets a fresh store directory and factory, closed afterwards."""

    compression = "zstd"  # the default: compressed commits (EFC2)

    def setUp(self) -> None:
        self.store_dir = tempfile.mkdtemp(prefix="eventfold-test-")
        env = {"FILESTORE_PATH": self.store_dir, "FILESTORE_COMPRESSION": self.compression}
        self.factory = FileStoreFactory(env)
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        self.factory.close()
        shutil.rmtree(self.store_dir, ignore_errors=True)


class TestFileAggregateRecorder(WithStore, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory.aggregate_recorder()


class TestFileSnapshotRecorder(WithStore, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory.aggregate_recorder(purpose="snapshots")


class TestFileApplicationRecorder(WithStore, ApplicationRecorderTestCase[FileApplicationRecorder]):
    def create_recorder(self) -> FileApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, FileApplicationRecorder)
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestFileApplicationRecorderStringIds(TestFileApplicationRecorder):
    def new_originator_id(self) -> str:
        return f"category:{super().new_originator_id()}"


class TestUncompressedApplicationRecorder(TestFileApplicationRecorder):
    compression = "none"  # commits of the first format (EFC1)


class TestUncompressedApplicationRecorderStringIds(TestFileApplicationRecorderStringIds):
    compression = "none"


class TestUncompressedAggregateRecorder(TestFileAggregateRecorder):
    compression = "none"


class TestFileTrackingRecorder(WithStore, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.factory.tracking_recorder()


class TestFileProcessRecorder(WithStore, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()


class TestFileNonInterleavingNotificationIDs(WithStore, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()


class TestFileInfrastructureFactory(InfrastructureFactoryTestCase[FileStoreFactory]):
    def setUp(self) -> None:
        self.store_dir = tempfile.mkdtemp(prefix="eventfold-test-")
        self.env = Environment("TestCase")
        self.env["PERSISTENCE_MODULE"] = "eventfold.infra.filestore"
        self.env[FileStoreFactory.FILESTORE_PATH] = self.store_dir
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self.store_dir, ignore_errors=True)

    def expected_factory_class(self) -> type[FileStoreFactory]:
        return FileStoreFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return FileAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return FileApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return FileTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return FileProcessRecorder

    class CustomView(FileTrackingRecorder):
        pass

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return self.CustomView

    def test_missing_path_names_the_key(self) -> None:
        env = Environment("MyApp", {"PERSISTENCE_MODULE": "eventfold.infra.filestore"})
        with self.assertRaisesRegex(OSError, "MYAPP_FILESTORE_PATH, FILESTORE_PATH"):
            FileStoreFactory(env)

    def test_bad_setting_names_the_key(self) -> None:
        env = {"FILESTORE_PATH": self.store_dir, "FILESTORE_DURABILITY": "maybe"}
        with self.assertRaisesRegex(OSError, "FILESTORE_DURABILITY"):
            FileStoreFactory(env)
        env = {"FILESTORE_PATH": self.store_dir, "FILESTORE_SEGMENT_BYTES": "-1"}
        with self.assertRaisesRegex(OSError, "FILESTORE_SEGMENT_BYTES"):
            FileStoreFactory(env)
        env = {"FILESTORE_PATH": self.store_dir, "FILESTORE_COMPRESSION": "lz4"}
        with self.assertRaisesRegex(OSError, "FILESTORE_COMPRESSION 'lz4'"):
            FileStoreFactory(env)


del AggregateRecorderTestCase
del ApplicationRecorderTestCase
del TrackingRecorderTestCase
del ProcessRecorderTestCase
del NonInterleavingNotificationIDsBaseCase
del InfrastructureFactoryTestCase
