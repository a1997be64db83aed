"""The donor journey: a graph of stages and the transitions between them (seed 000)."""

from __future__ import annotations

DEFAULT_JOURNEY: dict = {
    "stages": [
        {"id": "prospect", "name": "Prospect", "description": "Potential donor identified",
         "transitions": [{"to": "first_contact", "condition": "Initial outreach made"}]},
        {"id": "first_contact", "name": "First contact", "description": "Initial outreach made",
         "transitions": [{"to": "cultivation", "condition": "Donor responded or engaged"},
                         {"to": "first_gift", "condition": "Donor gave"}]},
        {"id": "cultivation", "name": "Cultivation", "description": "Building the relationship",
         "transitions": [{"to": "solicitation", "condition": "Ready for an ask"},
                         {"to": "first_gift", "condition": "Donor gave"}]},
        {"id": "solicitation", "name": "Solicitation", "description": "A gift has been asked for",
         "transitions": [{"to": "first_gift", "condition": "Donor gave"},
                         {"to": "cultivation", "condition": "Not yet; keep cultivating"}]},
        {"id": "first_gift", "name": "First gift", "description": "Made a first donation",
         "transitions": [{"to": "stewardship", "condition": "Thanked and receipted"}]},
        {"id": "stewardship", "name": "Stewardship", "description": "Thanking, reporting impact",
         "transitions": [{"to": "repeat_donor", "condition": "Gave again"},
                         {"to": "lapsed", "condition": "No gift in over a year"}]},
        {"id": "repeat_donor", "name": "Repeat donor", "description": "Gives regularly",
         "transitions": [{"to": "major_donor", "condition": "Major gift capacity shown"},
                         {"to": "lapsed", "condition": "No gift in over a year"}]},
        {"id": "major_donor", "name": "Major donor", "description": "Gives at the major-gift level",
         "transitions": [{"to": "stewardship", "condition": "Continued stewardship"},
                         {"to": "lapsed", "condition": "No gift in over a year"}]},
        {"id": "lapsed", "name": "Lapsed", "description": "No gift in over a year",
         "transitions": [{"to": "cultivation", "condition": "Re-engaged"},
                         {"to": "repeat_donor", "condition": "Gave again"}]},
    ]
}


def stage_ids(graph: dict | None) -> set[str]:
    return {s["id"] for s in (graph or DEFAULT_JOURNEY)["stages"]}
