"""The workflow definition's rules without a server: conditions, templating, durations, money,
the step graph and back-off."""

from datetime import timedelta

from chassis.errors import Violations
from services.crm.domain import workflow_context as context_rules
from services.crm.domain import workflow_definitions as definitions
from services.crm.domain import workflows as rules
from services.crm.domain.workflow_templates import TEMPLATES
from services.crm.handlers.workflow_events import CATALOG


def test_conditions():
    ctx = {"event": {"amount": 1200, "tags": ["a", "b"], "method": "check"}, "vars": {"min": 1000},
           "donor": {"gift_count": 1}}
    assert context_rules.matches([{"field": "event.amount", "op": "gte", "value": "{{vars.min}}"}], ctx)
    assert not context_rules.matches([{"field": "event.amount", "op": "lt", "value": 1000}], ctx)
    assert context_rules.matches([{"field": "event.tags", "op": "contains", "value": "b"},
                          {"field": "event.method", "op": "in", "value": ["check", "cash"]},
                          {"field": "donor.gift_count", "op": "eq", "value": "1"},
                          {"field": "event.missing", "op": "exists", "value": False}], ctx)
    assert not context_rules.matches([{"field": "event.missing", "op": "eq", "value": ""}], ctx)
    assert context_rules.matches([{"field": "event.missing", "op": "ne", "value": "x"}], ctx)
    assert context_rules.matches([], ctx)


def test_render_keeps_a_lone_placeholders_type():
    ctx = {"donor": {"name": "Ada", "n": 3}, "vars": {}}
    assert context_rules.render("Hi {{donor.name}} ({{ donor.n }}){{vars.none}}", ctx) == "Hi Ada (3)"
    assert context_rules.render("{{donor.n}}", ctx) == 3
    assert context_rules.render({"a": ["{{donor.name}}"]}, ctx) == {"a": ["Ada"]}


def test_durations_money_progress_backoff():
    assert definitions.parse_duration("14d") == timedelta(days=14)
    assert definitions.parse_duration("90m") == timedelta(minutes=90)
    assert definitions.parse_duration("1w") is None and definitions.parse_duration(5) is None
    assert context_rules.flatten_money({"amount": {"currency_code": "USD", "units": "12", "nanos": 500000000}}) == {
        "amount": 12.5, "amount_currency": "USD"}
    assert context_rules.flatten_money({"amount": {"currency_code": "EUR", "units": "7"}})["amount"] == 7
    assert [rules.backoff(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (10, 20, 40)]
    assert rules.backoff(30) == timedelta(hours=1)
    assert rules.progress(1, 4) == 25 and rules.progress(None, 4) == 100


def test_successor_and_cycles():
    steps = [{"id": "a", "type": "wait", "duration": "1d", "next": "c"},
             {"id": "b", "type": "wait", "duration": "1d"},
             {"id": "c", "type": "wait", "duration": "1d", "next": "end"}]
    assert definitions.successor(steps, 0) == 2 and definitions.successor(steps, 1) == 2
    assert definitions.successor(steps, 2) is None
    v = Violations()
    definitions.validate_definition({"steps": steps}, "d", v, CATALOG)
    assert not v.items
    steps[2]["next"] = "a"
    definitions.validate_definition({"steps": steps}, "d", v, CATALOG)
    assert [f for f, _ in v.items] == ["d.steps[2].next"]


def test_the_shipped_templates_are_valid():
    for t in TEMPLATES:
        v = Violations()
        definitions.validate_definition(t.definition, t.name, v, CATALOG)
        assert not v.items, (t.name, v.items)


def _trigger(event: str, *fields: str) -> dict:
    return {"triggers": [{"type": "event", "event": event,
                          "conditions": [{"field": f, "op": "exists"} for f in fields]}],
            "steps": [{"id": "a", "type": "wait", "duration": "1d"}]}


def test_the_trigger_catalog():
    client = CATALOG.get("crm.client.created")
    assert client.payload == "ClientChangedEvent" and client.facts == ("client",)
    assert {"client_id", "name", "status", "changed_fields"} <= client.fields
    assert CATALOG.get("crm.document.signed").facts == ("document", "client")  # the document's client too
    gift = CATALOG.get("crm.donation.recorded")
    assert {"amount", "amount_currency", "date.year", "first_gift"} <= gift.fields and "amount.units" not in gift.fields
    assert CATALOG.get("billing.subscription.renewed").payload == "SubscriptionChangedEvent"  # a family
    assert CATALOG.get("crm.workflow.execution_started") is None  # no workflow starts on workflows
    assert {"crm.client.created", "crm.document.signed", "crm.batch.posted", "billing.invoice.*"} <= set(
        CATALOG.bindings())
    v = Violations()
    definitions.validate_definition(_trigger("crm.client.created", "event.status", "client.assigned_manager_id",
                                             "vars.x"), "d", v, CATALOG)
    definitions.validate_definition(_trigger("crm.document.signed", "document.name", "client.name",
                                             "event.status"), "d", v, CATALOG)
    definitions.validate_definition(_trigger("crm.donation.recorded", "donor.custom_fields.tier",
                                             "donation.is_first_gift", "event.date.month"), "d", v, CATALOG)
    assert not v.items, v.items
    bad = [("crm.client.created", "event.tax_id", "d.triggers[0].conditions[0].field"),
           ("crm.client.created", "donor.name", "d.triggers[0].conditions[0].field"),
           ("crm.client.created", "client.tax_id", "d.triggers[0].conditions[0].field"),
           ("crm.client.created", "input.x", "d.triggers[0].conditions[0].field"),
           ("crm.client.exploded", "event.name", "d.triggers[0].event"),
           ("crm.workflow.execution_started", "event.name", "d.triggers[0].event"),
           ("billing.subscription.*", "event.status", "d.triggers[0].event")]  # a family is no event
    for event, field, path in bad:
        v = Violations()
        definitions.validate_definition(_trigger(event, field), "d", v, CATALOG)
        assert [f for f, _ in v.items] == [path], (event, field, v.items)
    v = Violations()
    definitions.validate_definition({"steps": [{"id": "w", "type": "wait", "until_event": "crm.document.signed",
                                                "timeout": "7d", "match": [{"field": "vars.x", "op": "exists"}]}]},
                                    "d", v, CATALOG)
    assert [f for f, _ in v.items] == ["d.steps[0].match[0].field"]  # a wait's match reads no vars
