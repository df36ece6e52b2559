"""The plans of rebuilds shared by several machines, in two tables of the postgres backend.

``eventfold_rebuild_plans`` holds at most one open plan per projection (its
workers, the generation it writes, ``until_id`` and the projection's code
version); ``eventfold_rebuild_parts`` the parts written for it, one row per
worker (its range, events applied, state and the state's SHA-256). The tables
are created with the others (``postgres.py``); ``RebuildPlans`` in
``base.py`` states the contract.

Concurrency: opening takes a transaction-level advisory lock of the
projection's plan, so processes that arrive together agree on one plan (and
number one generation). A part is written, and the parts counted, under a row
lock of the plan (``FOR UPDATE``): writers are serialized, so exactly one sees
its write make the last part. ``complete`` takes the same advisory lock and
row lock, then switches the generation and deletes the plan and its parts in
one transaction. Starting a generation (``number_generation``) drops an open
plan and its parts.
"""

from __future__ import annotations

import hashlib
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, sql
from psycopg.rows import DictRow

from eventfold.infra.backends.base import PartWrite, RebuildPart, RebuildPlan
from eventfold.infra.backends.postgres import (
    PARTS,
    number_generation,
    statement,
    switch_generation,
    xact_lock,
)
from eventfold.infra.errors import EXIT_DAMAGED, EventfoldError


class DamagedPartError(EventfoldError):
    """A part's state does not match the digest written with it (exit code 3)."""

    exit_code = EXIT_DAMAGED
    label = "damaged store"


class PostgresRebuildPlans:
    """The shared rebuild plan of one projection, and its parts."""

    def __init__(self, datastore: PostgresDatastore, name: str) -> None:
        self.datastore = datastore
        self.name = name

    def _sql(self, text: str) -> sql.Composed:
        return statement(text, self.datastore.schema)

    def _lock_plan(self, cursor: Cursor[DictRow]) -> None:
        """Hold the projection's plan lock until the transaction ends."""
        xact_lock(cursor, f"eventfold.plan:{self.datastore.schema}:{self.name}")

    def _select(self, cursor: Cursor[DictRow], *, for_update: bool = False) -> RebuildPlan | None:
        cursor.execute(
            self._sql(
                "SELECT workers, generation, until_id, version FROM {schema}.{plans}"
                " WHERE projection = %s" + (" FOR UPDATE" if for_update else "")
            ),
            (self.name,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        return RebuildPlan(
            int(row["workers"]), row["generation"], int(row["until_id"]), int(row["version"])
        )

    def open(self, workers: int, version: int, until: int) -> tuple[RebuildPlan, bool]:
        with self.datastore.transaction(commit=True) as cursor:
            self._lock_plan(cursor)
            found = self._select(cursor)
            if found is not None:
                return found, False
            generation = number_generation(cursor, self.datastore.schema, self.name)
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.{plans} (projection, workers, generation, until_id,"
                    " version) VALUES (%s, %s, %s, %s, %s)"
                ),
                (self.name, workers, generation, until, version),
            )
        return RebuildPlan(workers, generation, until, version), True

    def plan(self) -> RebuildPlan | None:
        with self.datastore.transaction() as cursor:
            return self._select(cursor)

    def written(self, plan: RebuildPlan) -> list[int]:
        with self.datastore.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT worker FROM {schema}.{parts} WHERE projection = %s"
                    " AND generation = %s ORDER BY worker"
                ),
                (self.name, plan.generation),
            )
            return [int(row["worker"]) for row in cursor.fetchall()]

    def write_part(self, plan: RebuildPlan, part: RebuildPart) -> PartWrite:
        with self.datastore.transaction(commit=True) as cursor:
            if self._select(cursor, for_update=True) != plan:
                return PartWrite("closed", 0)
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.{parts} (projection, generation, worker, after_id,"
                    " last_id, applied, state, digest) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (projection, worker) DO NOTHING"
                ),
                (
                    self.name,
                    plan.generation,
                    part.worker,
                    part.after,
                    part.last,
                    part.applied,
                    part.state,
                    hashlib.sha256(part.state).hexdigest(),
                ),
            )
            inserted = cursor.rowcount == 1
            cursor.execute(
                self._sql(
                    "SELECT count(*) AS parts FROM {schema}.{parts} WHERE projection = %s"
                    " AND generation = %s"
                ),
                (self.name, plan.generation),
            )
            row = cursor.fetchone()
            assert row is not None
        return PartWrite("written" if inserted else "present", int(row["parts"]))

    def parts(self, plan: RebuildPlan, worker: int | None = None) -> list[RebuildPart]:
        text = (
            "SELECT worker, after_id, last_id, applied, state, digest FROM {schema}.{parts}"
            " WHERE projection = %s AND generation = %s"
        )
        arguments: tuple[Any, ...] = (self.name, plan.generation)
        if worker is not None:
            text += " AND worker = %s"
            arguments += (worker,)
        with self.datastore.transaction() as cursor:
            cursor.execute(self._sql(text + " ORDER BY worker"), arguments)
            rows = cursor.fetchall()
        return [self._part(row) for row in rows]

    def _part(self, row: DictRow) -> RebuildPart:
        state = bytes(row["state"])
        if hashlib.sha256(state).hexdigest() != row["digest"]:
            where = f"postgres:{self.datastore.schema}.{PARTS}/{self.name}/{row['worker']}"
            msg = f"{where}: the part's state does not match its SHA-256 digest"
            raise DamagedPartError(msg)
        return RebuildPart(
            int(row["worker"]),
            int(row["after_id"]),
            int(row["last_id"]),
            int(row["applied"]),
            state,
        )

    def complete(self, plan: RebuildPlan) -> bool:
        with self.datastore.transaction(commit=True) as cursor:
            self._lock_plan(cursor)
            if self._select(cursor, for_update=True) != plan:
                return False
            switch_generation(cursor, self.datastore.schema, self.name, plan.generation)
            for table in ("{parts}", "{plans}"):
                cursor.execute(
                    self._sql(f"DELETE FROM {{schema}}.{table} WHERE projection = %s"),
                    (self.name,),
                )
        return True
