"""A short demonstration of the file event store, for ``eventfold demo``.

An eventsourcing application records deposits on a few accounts in a file
store, a writer "crashes" half-way through a commit, the store is checked,
reopened (the torn tail is dropped, a copy kept) and proved intact. Later
issues replace this with the full ingest, projection and verify story.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from eventfold.infra.check import StoreReport, check_store
from eventfold.infra.logformat import encode_commit, encode_event


class Account(Aggregate):
    """A demo aggregate: a running balance."""

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.balance = Decimal(0)

    @event("Deposited")
    def deposit(self, amount: Decimal) -> None:
        self.balance += amount


class Accounts(Application[UUID]):
    snapshotting_intervals = {Account: 100}  # noqa: RUF012 - the library's API

    def open(self, name: str) -> UUID:
        account = Account(name)
        self.save(account)
        return account.id

    def deposit(self, account_id: UUID, amounts: list[Decimal]) -> None:
        account: Account = self.repository.get(account_id)
        for amount in amounts:
            account.deposit(amount)
        self.save(account)

    def balance(self, account_id: UUID) -> Decimal:
        account: Account = self.repository.get(account_id)
        return account.balance


@dataclass
class DemoStep:
    title: str
    lines: list[str]
    report: StoreReport | None = None


def _app(store: str) -> Accounts:
    return Accounts(
        env={
            "PERSISTENCE_MODULE": "eventfold.infra.filestore",
            "FILESTORE_PATH": store,
        }
    )


def run_demo(store: str, on_step: Callable[[DemoStep], None]) -> bool:
    """Run the demonstration in ``store`` (a new directory); True if it proved intact."""
    os.makedirs(store, exist_ok=True)
    app = _app(store)
    started = time.perf_counter()
    ids = [app.open(name) for name in ("north", "south", "east")]
    expected = dict.fromkeys(ids, Decimal(0))
    for round_no in range(1, 201):
        for n, account_id in enumerate(ids):
            amounts = [Decimal(f"{round_no}.{n}{k}") for k in range(5)]
            app.deposit(account_id, amounts)
            expected[account_id] += sum(amounts, Decimal(0))
    elapsed = time.perf_counter() - started
    events = app.recorder.max_notification_id() or 0
    on_step(
        DemoStep(
            "1. Record",
            [
                f"{events} events for 3 accounts, 600 commits, each fsynced: "
                f"{elapsed:.2f}s ({events / elapsed:,.0f} events/s)",
                "snapshots every 100 versions, stored by the same file store",
            ],
        )
    )
    app.close()

    segment = os.path.join(store, "accounts_events", "00000001.seg")
    size = os.path.getsize(segment)
    commit = encode_commit(
        events + 1, [encode_event(events + 1, ids[0], 999, "Deposited", b"{}")], None
    )
    with open(segment, "ab") as f:  # the next commit, cut short by a crash
        f.write(commit[: len(commit) // 2])
    on_step(
        DemoStep(
            "2. Crash",
            [
                f"a writer died mid-commit: {len(commit) // 2} of {len(commit)} bytes "
                f"of an unacknowledged commit at byte offset {size} of {segment}"
            ],
        )
    )
    on_step(DemoStep("3. Check", ["eventfold check (read-only):"], check_store(store)))

    app = _app(store)
    balances_ok = all(app.balance(i) == expected[i] for i in ids)
    notes = list(app.recorder.log.recovery_notes)  # type: ignore[attr-defined]
    app.deposit(ids[0], [Decimal("0.01")])
    app.close()
    on_step(
        DemoStep(
            "4. Recover",
            [*notes,
             f"balances rebuilt from snapshots + events match what was deposited: "
             f"{'yes' if balances_ok else 'NO'}",
             "a new commit after recovery: ok"],
        )
    )
    final = check_store(store)
    on_step(DemoStep("5. Check again", ["eventfold check:"], final))
    return balances_ok and final.sound
