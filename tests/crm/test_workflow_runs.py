"""Workflow executions end to end on the real servers: events trigger them, steps run on the
due-actions table, waits move with a manual clock (never a sleep), and a crash mid-execution
resumes at its step without repeating one. (Failing steps, retries, cancelling and schedules:
test_workflow_recovery.py.)

The crm host runs its own worker on the system clock; these tests also run workers of their own
(`WorkflowWorker` on a ManualClock set days ahead). Whatever is due "now" may be run by either;
whatever follows a wait the test's clock ended is due only on the test's clock.
"""

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from givance.crm.v1 import workflow_service_pb2 as pb
from google.protobuf import json_format

from services.crm.handlers.workflow_runs import ManualClock
from tests.crm.workflow_support import (
    ST,
    CountingMessenger,
    ahead,
    completed,
    custom,
    from_template,
    get_execution,
    handled,
    list_executions,
    list_todos,
    make_donor,
    make_worker,
    pb_get,
    routing_keys,
    wf,
)
from tests.helpers import day, eventually, gift, usd

__all__ = ["wf"]  # the fixture


async def test_first_gift_thank_you_call(stubs, wf, tenant, admin_db):
    w = await from_template(wf, tenant, "templates/first-gift-thank-you", assignee_id=tenant.user_id)
    donor = await make_donor(stubs, tenant)
    await stubs.donations.RecordDonation(gift(donor.id, usd(250)), metadata=tenant.md)

    async def todo_made():
        return [t for t in await list_todos(stubs, tenant, donor.id) if t.title == "Thank-you call: Ada Lovelace"]

    todos = await eventually(todo_made, what="the thank-you todo")
    t = todos[0]
    assert t.assignee_id == tenant.user_id and t.priority == 3  # HIGH
    assert date(t.due_date.year, t.due_date.month, t.due_date.day) - datetime.now(UTC).date() in (
        timedelta(days=2), timedelta(days=1))  # 2 days from when the step ran (UTC midnight aside)
    assert "First gift of 250" in t.description
    [ex] = await list_executions(wf, tenant, workflow_id=w.id)
    ex = await eventually(lambda: completed(wf, tenant, ex.id), what="the execution to complete")
    assert ex.trigger_event == "crm.donation.recorded" and ex.donor_id == donor.id and ex.progress == 100
    assert [entry.outcome for entry in ex.log] == ["started", "completed", "completed"]
    assert json_format.MessageToDict(ex.log[1].output)["todo_id"] == t.id
    assert await eventually(lambda: routing_keys(admin_db, ex.id)) and await routing_keys(admin_db, ex.id) == [
        "crm.workflow.execution_started", "crm.workflow.step_completed", "crm.workflow.execution_completed"]
    # a second gift is not a first gift: nothing starts
    await stubs.donations.RecordDonation(gift(donor.id, usd(40)), metadata=tenant.md)
    await eventually(lambda: handled(admin_db, tenant, "crm.donation.recorded", 2), what="the second gift handled")
    assert len(await list_executions(wf, tenant, workflow_id=w.id)) == 1
    assert len(await todo_made()) == 1


async def test_lapsed_donor_sequence(stubs, wf, tenant, admin_db, crm_db):
    this_year = datetime.now(UTC).year
    last_year = day(this_year - 1, 6, 15)
    quiet = await make_donor(stubs, tenant, first_name="Quiet", email="quiet@example.org")
    returning = await make_donor(stubs, tenant, first_name="Back")
    current = await make_donor(stubs, tenant, first_name="Current")
    for d in (quiet, returning):
        await stubs.donations.RecordDonation(gift(d.id, usd(80), date=last_year), metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(current.id, usd(80), date=day(this_year, 1, 1)), metadata=tenant.md)
    w = await from_template(wf, tenant, "templates/lapsed-donor-sequence", assignee_id=tenant.user_id)
    worker = make_worker(crm_db, ManualClock())

    async def waiting():
        await worker.run_until_idle()
        exs = await list_executions(wf, tenant, workflow_id=w.id)
        return exs if len(exs) == 2 and all(e.status == ST.WORKFLOW_EXECUTION_STATUS_WAITING for e in exs) else None

    exs = await eventually(waiting, what="two lapsed donors waiting for a gift")
    by_donor = {e.donor_id: e for e in exs}
    assert set(by_donor) == {quiet.id, returning.id}  # the current donor is not lapsed
    sent = json_format.MessageToDict(by_donor[quiet.id].context)["steps"]["reminder"]
    assert sent["template"] == "lapsed-donor-reminder" and sent["to"] == quiet.id
    assert sent["variables"] == {"first_name": "Quiet", "last_gift_date": f"{this_year - 1}-06-15"}
    assert by_donor[quiet.id].current_step == "wait_for_gift"
    # one donor gives during the wait: the gift ends their wait, and no todo follows
    await stubs.donations.RecordDonation(gift(returning.id, usd(30)), metadata=tenant.md)
    back = await eventually(lambda: completed(wf, tenant, by_donor[returning.id].id), what="the returning donor's end")
    steps = json_format.MessageToDict(back.context)["steps"]
    assert steps["wait_for_gift"]["event_arrived"] is True and steps["follow_up"]["skipped"] is True
    # paused, the weekly schedule stops (a run 15 days on could fall in a new year, with new LYBUNT
    # donors); the running sequences go on. 14 days pass for the quiet one: the follow-up todo
    await wf.PauseWorkflow(pb.PauseWorkflowRequest(id=w.id), metadata=tenant.md)
    later = make_worker(crm_db, ahead(15))
    await later.run_until_idle()
    quiet_ex = await get_execution(wf, tenant, by_donor[quiet.id].id)
    assert quiet_ex.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED
    todos = await list_todos(stubs, tenant, quiet.id)
    assert [t.title for t in todos] == ["Lapsed donor follow-up: Quiet Lovelace"]
    assert todos[0].assignee_id == tenant.user_id
    assert not await list_todos(stubs, tenant, returning.id)
    assert len(await list_executions(wf, tenant, workflow_id=w.id)) == 2


async def test_major_gift_moves_to_cultivation(stubs, wf, tenant, admin_db):
    w = await from_template(wf, tenant, "templates/major-gift-cultivation", threshold=1000)
    small, big = await make_donor(stubs, tenant, first_name="Small"), await make_donor(stubs, tenant, first_name="Big")
    await stubs.donations.RecordDonation(gift(small.id, usd(999)), metadata=tenant.md)
    await stubs.donations.RecordDonation(gift(big.id, usd(5000)), metadata=tenant.md)

    async def moved():
        d = (await stubs.donors.GetDonor(pb_get(big.id), metadata=tenant.md)).donor
        return d if d.journey_stage == "cultivation" else None

    await eventually(moved, what="the big donor in cultivation")
    [ex] = await list_executions(wf, tenant, workflow_id=w.id)
    ex = await eventually(lambda: completed(wf, tenant, ex.id), what="the execution to complete")
    assert ex.donor_id == big.id
    assert [t.title for t in await list_todos(stubs, tenant, big.id)] == ["Plan cultivation: Big Lovelace"]
    await eventually(lambda: handled(admin_db, tenant, "crm.donation.recorded", 2), what="both gifts handled")
    assert len(await list_executions(wf, tenant, workflow_id=w.id)) == 1
    small_now = (await stubs.donors.GetDonor(pb_get(small.id), metadata=tenant.md)).donor
    assert small_now.journey_stage != "cultivation"
    changed = await admin_db.fetchval("SELECT count(*) FROM crm.outbox WHERE aggregate_id = $1 "
                                      "AND routing_key = 'crm.donor.stage_changed'", big.id)
    assert changed == 1


async def test_crash_mid_execution_resumes_without_repeating_a_step(stubs, wf, tenant, crm_db):
    donor = await make_donor(stubs, tenant)
    w = await custom(wf, tenant, [
        {"id": "settle", "type": "wait", "duration": "1d"},  # past it, only the test's clock runs this execution
        {"id": "first", "type": "create_todo", "title": "First {{donor.first_name}}"},
        {"id": "tell", "type": "send_message", "template": "welcome", "to": "donor",
         "variables": {"name": "{{donor.name}}"}},
        {"id": "second", "type": "create_todo", "title": "Second {{donor.first_name}}"},
    ])
    ex = (await wf.StartWorkflowExecution(pb.StartWorkflowExecutionRequest(workflow_id=w.id, donor_id=donor.id),
                                          metadata=tenant.md)).execution

    async def waiting():
        e = await get_execution(wf, tenant, ex.id)
        return e.status == ST.WORKFLOW_EXECUTION_STATUS_WAITING

    await eventually(waiting, what="the execution to wait")
    clock = ahead(2)
    hanging = CountingMessenger(hang=True)
    doomed = make_worker(crm_db, clock, hanging)
    task = asyncio.create_task(doomed.run_until_idle())
    await asyncio.wait_for(hanging.called.wait(), 20)
    task.cancel()  # the worker dies mid-step: the message was asked for, nothing of its step committed
    with pytest.raises(asyncio.CancelledError):
        await task
    mid = await get_execution(wf, tenant, ex.id)
    assert mid.current_step == "tell" and mid.status == ST.WORKFLOW_EXECUTION_STATUS_RUNNING
    assert [t.title for t in await list_todos(stubs, tenant, donor.id)] == ["First Ada"]
    # before its lease runs out, nobody takes the step again
    early = CountingMessenger()
    await make_worker(crm_db, clock, early).run_until_idle()
    assert not early.calls and (await get_execution(wf, tenant, ex.id)).current_step == "tell"
    clock.advance(minutes=2)
    messenger = CountingMessenger()
    assert await make_worker(crm_db, clock, messenger).run_until_idle() >= 2
    done = await get_execution(wf, tenant, ex.id)
    assert done.status == ST.WORKFLOW_EXECUTION_STATUS_COMPLETED
    assert sorted(t.title for t in await list_todos(stubs, tenant, donor.id)) == ["First Ada", "Second Ada"]
    # the message step ran again with the same idempotency key: comms sends it once
    assert [m.request_id for m in messenger.calls] == [m.request_id for m in hanging.calls]
    assert messenger.calls[0].donor_id == donor.id and messenger.calls[0].variables == {"name": "Ada Lovelace"}
    completed = [e.step_id for e in done.log if e.outcome == "completed" and e.step_id]
    assert completed == ["settle", "first", "tell", "second"]
