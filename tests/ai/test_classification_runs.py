"""Classification runs: every donor (or a list) classified unattended, batch by batch, with ai's own
tenant token (no caller), each suggestion made once however often a batch runs; only for a
requester who could do it themself; isolation and bad input."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from givance.ai.v1 import classification_pb2
from givance.ai.v1 import classification_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2 as dpb
from givance.crm.v1 import todo_service_pb2
from givance.identity.v1 import audit_service_pb2 as apb
from givance.identity.v1 import identity_service_pb2 as id_pb
from givance.identity.v1 import session_service_pb2 as spb

from tests.helpers import day, eventually, fails, gift, invalid, new_donor, usd

RUNNING, COMPLETED = (classification_pb2.CLASSIFICATION_RUN_STATUS_RUNNING,
                      classification_pb2.CLASSIFICATION_RUN_STATUS_COMPLETED)


async def _finished(ai, md, run_id: str) -> classification_pb2.ClassificationRun:
    async def done():
        r = (await ai.classification.GetClassificationRun(pb.GetClassificationRunRequest(id=run_id),
                                                          metadata=md)).run
        return r if r.status == COMPLETED else None
    return await eventually(done, what="the classification run")


async def _donors(stubs, tenant, n: int) -> list[str]:
    made = await asyncio.gather(*(stubs.donors.CreateDonor(new_donor(first_name=f"D{i}"), metadata=tenant.md)
                                  for i in range(n)))
    return [m.donor.id for m in made]


async def test_every_donor_is_classified_without_duplicating_an_open_suggestion(ai, stubs, tenant, other_tenant):
    lapsed = (await stubs.donors.CreateDonor(new_donor(first_name="Lena"), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(gift(lapsed.id, usd(80), date=day(2023, 4, 2)), metadata=tenant.md)
    # a suggestion already open (a ClassifyDonor earlier): the run finds it and adds none
    first = await ai.classification.ClassifyDonor(pb.ClassifyDonorRequest(donor_id=lapsed.id, suggest_todo=True),
                                                  metadata=tenant.md)
    assert first.suggestion == pb.SUGGESTION_OUTCOME_CREATED
    others = await _donors(stubs, tenant, 30)  # more than one batch
    theirs = (await stubs.donors.CreateDonor(new_donor(first_name="Theirs"), metadata=other_tenant.md)).donor

    run = (await ai.classification.StartClassificationRun(pb.StartClassificationRunRequest(
        run=classification_pb2.ClassificationRun(all_donors=True, suggest_todos=True), request_id="nightly"),
        metadata=tenant.md)).run
    assert run.status == RUNNING and run.requester_id == tenant.user_id
    again = (await ai.classification.StartClassificationRun(pb.StartClassificationRunRequest(
        run=classification_pb2.ClassificationRun(all_donors=True), request_id="nightly"), metadata=tenant.md)).run
    assert again.id == run.id  # AIP-155: a retried start is the same run

    done = await _finished(ai, tenant.md, run.id)
    # each new prospect gets its suggestion; Lena's, still open, is not made again
    assert (done.classified_count, done.failed_count, done.todos_created) == (31, 0, 30)
    assert done.HasField("complete_time")
    for donor_id in [lapsed.id, *others[:3]]:
        d = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=donor_id), metadata=tenant.md)).donor
        assert d.ai_classification == ("lapsed" if donor_id == lapsed.id else "prospect")
    todos = (await stubs.todos.ListTodos(todo_service_pb2.ListTodosRequest(donor_id=lapsed.id),
                                         metadata=tenant.md)).todos
    assert [t.id for t in todos] == [first.todo_id]
    # another organization's donors were never touched; its view of this run is NOT_FOUND
    assert not (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=theirs.id),
                                            metadata=other_tenant.md)).donor.ai_classification
    await fails(ai.classification.GetClassificationRun(pb.GetClassificationRunRequest(id=run.id),
                                                       metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)

    # crm's trail names ai's principal as the writer: the run used no caller's token
    async def written_by_ai():
        got = await stubs.audit.ListActivity(apb.ListActivityRequest(actor_id="service:ai", resource_id=others[0]),
                                             metadata=tenant.md)
        return [e for e in got.entries if e.action == "crm.donor.update"] or None
    await eventually(written_by_ai, what="crm's update of the donor by service:ai")


async def test_a_list_run_counts_a_donor_deleted_meanwhile_and_suggests_each_todo_once(ai, stubs, tenant):
    lapsed = []
    for name in ("Ana", "Ben"):
        d = (await stubs.donors.CreateDonor(new_donor(first_name=name), metadata=tenant.md)).donor
        await stubs.donations.RecordDonation(gift(d.id, usd(50), date=day(2023, 1, 5)), metadata=tenant.md)
        lapsed.append(d.id)
    gone = (await stubs.donors.CreateDonor(new_donor(first_name="Gone"), metadata=tenant.md)).donor
    await stubs.donors.DeleteDonor(dpb.DeleteDonorRequest(id=gone.id), metadata=tenant.md)
    ids = [*lapsed, gone.id, lapsed[0]]  # a repeat is ignored
    run = (await ai.classification.StartClassificationRun(pb.StartClassificationRunRequest(
        run=classification_pb2.ClassificationRun(donor_ids=ids, suggest_todos=True)), metadata=tenant.md)).run
    assert list(run.donor_ids) == [*lapsed, gone.id]
    done = await _finished(ai, tenant.md, run.id)
    assert (done.classified_count, done.failed_count, done.todos_created) == (2, 1, 2)
    # the same run again (as after a crash that lost its progress): nothing new
    rerun = (await ai.classification.StartClassificationRun(pb.StartClassificationRunRequest(
        run=classification_pb2.ClassificationRun(donor_ids=lapsed, suggest_todos=True)), metadata=tenant.md)).run
    redone = await _finished(ai, tenant.md, rerun.id)
    assert (redone.classified_count, redone.todos_created) == (2, 0)
    for donor_id in lapsed:
        todos = (await stubs.todos.ListTodos(todo_service_pb2.ListTodosRequest(donor_id=donor_id),
                                             metadata=tenant.md)).todos
        assert len(todos) == 1 and todos[0].is_ai_generated


async def test_only_a_requester_who_could_write_it_and_bad_input_named(ai, stubs, tenant):
    def start(md, **kw):
        request_id = kw.pop("request_id", "")
        return ai.classification.StartClassificationRun(pb.StartClassificationRunRequest(
            run=classification_pb2.ClassificationRun(**kw), request_id=request_id), metadata=md)
    donor = str(uuid.uuid4())
    await invalid(start(tenant.md), "run.donor_ids")
    await invalid(start(tenant.md, all_donors=True, donor_ids=[donor]), "run.donor_ids")
    await invalid(start(tenant.md, donor_ids=[donor, "nope"]), "run.donor_ids[1]")
    await invalid(start(tenant.md, donor_ids=[str(uuid.uuid4()) for _ in range(5001)]), "run.donor_ids")
    await invalid(start(tenant.md, all_donors=True, request_id="x" * 101), "request_id")
    await invalid(ai.classification.GetClassificationRun(pb.GetClassificationRunRequest(id="nope"),
                                                         metadata=tenant.md), "id")
    await fails(ai.classification.GetClassificationRun(pb.GetClassificationRunRequest(id=str(uuid.uuid4())),
                                                       metadata=tenant.md), grpc.StatusCode.NOT_FOUND)
    # may start a classification, but may not write donors in crm: no run writes them in its name
    account = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="classifier", permissions=["ai.classification.write", "crm.donors.read"]), metadata=tenant.md)
    token = (await stubs.identity.IssueServiceToken(id_pb.IssueServiceTokenRequest(
        client_id=account.service_account.client_id, client_secret=account.client_secret))).access_token
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))
    await fails(start(md, all_donors=True), grpc.StatusCode.PERMISSION_DENIED)
