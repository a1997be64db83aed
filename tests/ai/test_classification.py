"""ClassifyDonor: the class and its reason land in crm's donor, the suggested todo in crm's todos
(AI fields set), and an open suggestion is never duplicated."""

from __future__ import annotations

from datetime import date, timedelta

from givance.ai.v1 import classification_service_pb2 as pb
from givance.crm.v1 import donation_pb2, donation_service_pb2, todo_service_pb2
from givance.crm.v1 import donor_service_pb2 as dpb

from services.ai.domain.classify import classify
from services.ai.domain.facts import DonorFacts, Gift
from tests.helpers import day, new_donor, usd


async def test_a_lapsed_donor_is_classified_in_crm_and_gets_one_open_suggestion(ai, stubs, tenant):
    d = (await stubs.donors.CreateDonor(new_donor(first_name="Lena"), metadata=tenant.md)).donor
    await stubs.donations.RecordDonation(donation_service_pb2.RecordDonationRequest(
        donation=donation_pb2.Donation(donor_id=d.id, amount=usd(80), date=day(2023, 4, 2))), metadata=tenant.md)
    first = await ai.classification.ClassifyDonor(pb.ClassifyDonorRequest(donor_id=d.id, suggest_todo=True),
                                                  metadata=tenant.md)
    assert first.classification == "lapsed" and "April 2, 2023" in first.reason
    assert first.suggestion == pb.SUGGESTION_OUTCOME_CREATED and first.todo_title.startswith("Re-engage Lena")
    donor = (await stubs.donors.GetDonor(dpb.GetDonorRequest(id=d.id), metadata=tenant.md)).donor
    assert donor.ai_classification == "lapsed"
    todo = (await stubs.todos.GetTodo(todo_service_pb2.GetTodoRequest(id=first.todo_id), metadata=tenant.md)).todo
    assert todo.is_ai_generated and todo.ai_reasoning and todo.ai_confidence.value in ("0.70", "0.7")
    again = await ai.classification.ClassifyDonor(pb.ClassifyDonorRequest(donor_id=d.id, suggest_todo=True),
                                                  metadata=tenant.md)
    assert again.suggestion == pb.SUGGESTION_OUTCOME_ALREADY_OPEN and again.todo_id == first.todo_id
    todos = (await stubs.todos.ListTodos(todo_service_pb2.ListTodosRequest(donor_id=d.id), metadata=tenant.md)).todos
    assert len(todos) == 1


def test_the_classes_follow_the_giving_history():
    today = date(2026, 12, 1)

    def facts(*gifts):
        return DonorFacts("d", "A", "B", gifts=[Gift(f"g{i}", a, "USD", (today - timedelta(days=n)).isoformat())
                                                for i, (a, n) in enumerate(gifts)])
    assert classify(facts(), today).label == "prospect"
    assert classify(facts(("50.00", 10)), today).label == "new_donor"
    assert classify(facts(("50.00", 10), ("40.00", 100), ("30.00", 200)), today).label == "loyal"
    assert classify(facts(("1500.00", 30), ("10.00", 90)), today).label == "major_donor"
    assert classify(facts(("50.00", 600)), today).label == "lapsed"
    assert classify(facts(("50.00", 10), ("40.00", 500)), today).label == "active"
    assert classify(facts(("50.00", 10), ("40.00", 500)), today).todo is None
