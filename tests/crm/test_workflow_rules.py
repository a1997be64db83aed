"""The workflow definition's rules without a server: conditions, templating, durations, money,
the step graph and back-off."""

from datetime import timedelta

from chassis.errors import Violations
from services.crm.domain import workflow_context as context_rules
from services.crm.domain import workflow_definitions as definitions
from services.crm.domain import workflows as rules
from services.crm.domain.workflow_templates import TEMPLATES


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
    definitions.validate_definition({"steps": steps}, "d", v)
    assert not v.items
    steps[2]["next"] = "a"
    definitions.validate_definition({"steps": steps}, "d", v)
    assert [f for f, _ in v.items] == ["d.steps[2].next"]


def test_the_shipped_templates_are_valid():
    for t in TEMPLATES:
        v = Violations()
        definitions.validate_definition(t.definition, t.name, v)
        assert not v.items, (t.name, v.items)
