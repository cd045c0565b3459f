"""Queued jobs are part of what the hub holds about a citizen: their parameters may carry
a NameID. Right of access lists them; erasure deletes them (pending ones included)."""

from __future__ import annotations

ALICE = "a11ce000-0000-4000-8000-00000000a11c"
BOB = "b0b00000-0000-4000-8000-000000000b0b"


async def test_jobs_mentioning_a_name_id_are_shown_and_erased(hub, chores):
    alice_job = await chores.add_job("flaky", {"key": ALICE, "failures": 0}, after=3600)
    await chores.add_job("flaky", {"key": BOB, "failures": 0}, after=3600)
    # A NameID looking like a LIKE pattern matches itself only.
    await chores.add_job("flaky", {"key": "a11ce000%", "failures": 0}, after=3600)

    found = await hub.citizens.show(ALICE)
    assert [(job["id"], job["instance"], job["method"], job["state"]) for job in found["jobs"]] == [
        (alice_job, "chores/home", "flaky", "pending")
    ]
    erasure = await hub.citizens.erase(ALICE, actor="test")
    assert erasure.removed["jobs"] == 1
    assert (await hub.citizens.show(ALICE))["jobs"] == []
    assert len((await hub.citizens.show(BOB))["jobs"]) == 1
    assert len((await hub.citizens.show("a11ce000%"))["jobs"]) == 1
