"""The sample generator's options: many categories and long random ids, deterministic."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from eventfold.application.demo.sample import CATEGORIES, category_names, write_sample


def lines(count: int, **options: Any) -> list[dict[str, Any]]:
    out = io.BytesIO()
    assert write_sample(out, count, **options) == count
    return [json.loads(line) for line in out.getvalue().splitlines()]


def without(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != key} for row in rows]


def test_twenty_categories_or_fewer_write_the_lines_they_always_have() -> None:
    out = io.BytesIO()
    write_sample(out, 2)
    assert out.getvalue() == (
        b'{"id":"evt-000000001","category":"gifts","value":395.45,'
        b'"timestamp":"2026-01-01T00:00:00Z"}\n'
        b'{"id":"evt-000000002","category":"[bold]markup[/bold]","value":189.89,'
        b'"timestamp":"2026-01-01T00:01:00Z"}\n'
    )
    assert {row["category"] for row in lines(2000, categories=3)} == set(CATEGORIES[:3])


def test_category_names_beyond_the_named_ones_are_generated() -> None:
    names = category_names(100_000)
    assert names[:20] == CATEGORIES
    assert names[20] == "category-000021" and names[-1] == "category-100000"
    assert len(set(names)) == 100_000
    assert category_names(5) == CATEGORIES[:5]
    with pytest.raises(ValueError, match="at least 1"):
        category_names(0)


def test_many_categories_spread_the_same_events_over_more_names() -> None:
    few = lines(5000)
    many = lines(5000, categories=1000)
    assert without(many, "category") == without(few, "category")
    used = {row["category"] for row in many}
    assert len(used) > 950  # 5 events a category on average: nearly all appear
    assert used <= set(category_names(1000))
    assert many == lines(5000, categories=1000)  # deterministic
    assert lines(200, categories=1000, seed=8) != lines(200, categories=1000)


def test_long_ids_are_random_hex_deterministic_and_new_for_another_first_id() -> None:
    short = lines(3000, categories=500)
    long = lines(3000, categories=500, long_ids=True)
    assert without(long, "id") == without(short, "id")
    ids = [row["id"] for row in long]
    assert all(re.fullmatch("[0-9a-f]{32}", event_id) for event_id in ids)
    assert len(set(ids)) == len(ids)
    assert long == lines(3000, categories=500, long_ids=True)
    more = {row["id"] for row in lines(3000, categories=500, long_ids=True, first_id=3001)}
    assert not more & set(ids)


def test_a_long_id_source_over_many_categories_ingests_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "long.jsonl"
    with source.open("wb") as f:
        write_sample(f, 1500, categories=300, long_ids=True)
    code, out, err = run(capsys, "ingest", str(source), "--store", str(tmp_path / "s"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["ingested"], report["duplicates"], report["invalid"]) == (1500, 0, 0)
