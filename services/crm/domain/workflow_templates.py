"""The donor-side workflow templates shipped with crm ("templates/<name>"); CreateWorkflow
copies one into an organization's own draft workflow.

crm's donors carry no assigned staff member yet, so "the donor's assigned staff" is the
workflow's `assignee_id` variable, set when the template is copied (empty: the todo is left
unassigned, for whoever picks it up).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "templates/"


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    category: str
    definition: dict
    variables: dict


TEMPLATES: tuple[Template, ...] = (
    Template(
        name="templates/first-gift-thank-you",
        title="First gift: thank-you call within 2 days",
        description="When a donor's first gift is recorded, a high-priority todo to call and thank them, due in "
                    "2 days, for the staff member in assignee_id.",
        category="donor_care",
        definition={
            "triggers": [{"type": "event", "event": "crm.donation.recorded",
                          "conditions": [{"field": "donation.is_first_gift", "op": "eq", "value": True}]}],
            "steps": [{"id": "thank_you_call", "type": "create_todo",
                       "title": "Thank-you call: {{donor.name}}",
                       "description": "First gift of {{event.amount}} {{event.amount_currency}} on {{donation.date}}. "
                                      "Call within 2 days to say thank you.",
                       "due_in": "2d", "priority": "high", "assignee": "{{vars.assignee_id}}"}],
        },
        variables={"assignee_id": ""},
    ),
    Template(
        name="templates/lapsed-donor-sequence",
        title="Lapsed donor sequence",
        description="Every week, each LYBUNT donor (gave last year, not yet this year) gets a message; if no gift "
                    "arrives within 14 days, a todo to follow up. One sequence per donor and year.",
        category="donor_care",
        definition={
            "triggers": [{"type": "schedule", "every": "7d", "audience": "lybunt"}],
            "steps": [
                {"id": "reminder", "type": "send_message", "template": "lapsed-donor-reminder", "to": "donor",
                 "variables": {"first_name": "{{donor.first_name}}", "last_gift_date": "{{donor.last_gift_date}}"}},
                {"id": "wait_for_gift", "type": "wait", "until_event": "crm.donation.recorded", "timeout": "14d",
                 "match": [{"field": "event.donor_id", "op": "eq", "value": "{{donor.id}}"}]},
                {"id": "follow_up", "type": "create_todo",
                 "if": [{"field": "steps.wait_for_gift.event_arrived", "op": "eq", "value": False}],
                 "title": "Lapsed donor follow-up: {{donor.name}}",
                 "description": "No gift since the reminder of {{steps.reminder.time}}; "
                                "last gift {{donor.last_gift_date}}.",
                 "due_in": "3d", "priority": "medium", "assignee": "{{vars.assignee_id}}"},
            ],
        },
        variables={"assignee_id": ""},
    ),
    Template(
        name="templates/major-gift-cultivation",
        title="Major gift: move to cultivation",
        description="A gift of at least `threshold` moves its donor to the cultivation stage and asks the staff "
                    "member in assignee_id to plan the relationship.",
        category="donor_care",
        definition={
            "triggers": [{"type": "event", "event": "crm.donation.recorded",
                          "conditions": [{"field": "event.amount", "op": "gte", "value": "{{vars.threshold}}"}]}],
            "steps": [
                {"id": "cultivate", "type": "move_stage", "stage": "cultivation",
                 "reason": "Major gift of {{event.amount}} {{event.amount_currency}}"},
                {"id": "plan", "type": "create_todo", "title": "Plan cultivation: {{donor.name}}",
                 "description": "Gave {{event.amount}} {{event.amount_currency}}; moved to cultivation.",
                 "due_in": "7d", "priority": "high", "assignee": "{{vars.assignee_id}}"},
            ],
        },
        variables={"assignee_id": "", "threshold": 1000},
    ),
)

BY_NAME = {t.name: t for t in TEMPLATES}
