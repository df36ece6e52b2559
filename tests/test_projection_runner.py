"""The library's ProjectionRunner drives an eventfold projection to the same state."""

from __future__ import annotations

import json
from pathlib import Path

from eventsourcing.projection import ProjectionRunner

from eventfold.application.app import Eventfold, open_store, store_env
from eventfold.application.ingest import Ingestor
from eventfold.application.projecting import Projector
from eventfold.application.projecting.runner import fold_view, library_projection
from eventfold.application.recorded import RECORDED_TOPIC
from eventfold.projections.builtin import CategoryTotals, HourlyTotals
from processes import HANG


def test_library_runner_folds_like_the_projector(tmp_path: Path) -> None:
    store, source = tmp_path / "store", tmp_path / "s.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                {"id": i, "category": f"c{i % 4}", "timestamp": f"2026-03-01T{i % 24:02d}:00:00Z"}
            )[:-1]
            + f', "value": {i}.5}}\n'
            for i in range(120)
        )
    )
    app = open_store(str(store))
    with Ingestor(app, str(store)) as ingestor:
        ingestor.run(str(source))
    recorded = app.recorder.select_notifications(0, 10_000, topics=[RECORDED_TOPIC])
    last = recorded[-1].id  # the runner subscribes to the projection's topics only
    for projection_class in (CategoryTotals, HourlyTotals):
        expected = Projector(app, str(store), projection_class()).rebuild()
        env = store_env(str(store))
        with ProjectionRunner(
            application_class=Eventfold,
            projection_class=library_projection(projection_class),
            view_class=fold_view(projection_class, app.backend.tracking_recorder_class),
            env=env,
        ) as runner:
            runner.wait(last, timeout=HANG)
            view = runner.projection.view
            assert view.projection.checksum(view.state) == expected.checksum
    app.close()
