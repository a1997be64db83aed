"""What a workflow may start on (or wait for): a catalog of event types, each with the fields of
its payload a condition may test and the facts crm loads beside it (the donor, the gift, the
client, the document it names). The catalog's content (event type -> payload message) is read
from the generated code by handlers/workflow_events.py; this module holds its shape and the
rules a definition's conditions must follow. No SQL, no grpc, no generated code.

A condition of a trigger reads `event.<field>` (the payload as JSON with the proto's field
names; money as a number with its currency beside it as `<field>_currency`), `<fact>.<field>`
for each fact the payload names, and `vars.*`; a wait's `match` reads the same but `vars`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chassis.errors import Violations

EVENT_TYPE_RE = re.compile(r"^[a-z]+\.[a-z_]+\.[a-z_]+$")

# A fact: the root a condition names it by -> (the payload field that names it, what it holds).
# crm reads it when the event comes (handlers.workflow_runs); a field below custom_fields is open.
FACTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "donor": ("donor_id", ("id", "first_name", "last_name", "name", "email", "journey_stage", "custom_fields",
                           "tags", "gift_count", "last_gift_date", "first_gift_date", "version")),
    "donation": ("donation_id", ("id", "date", "is_first_gift")),
    "client": ("client_id", ("id", "name", "client_number", "client_type", "status", "email", "company_name",
                             "assigned_manager_id")),
    "document": ("document_id", ("id", "name", "document_type", "client_id", "folder_id", "visibility", "tags",
                                 "current_version", "signature_status", "mime_type", "sha256")),
}
OPEN = {"donor": ("custom_fields",)}  # fields whose own keys are free


@dataclass(frozen=True)
class TriggerEvent:
    """One event type of the catalog: its payload message's name and the paths under `event.`
    a condition may test (a `.*` at the end: anything below it)."""

    payload: str
    fields: frozenset[str]

    @property
    def facts(self) -> tuple[str, ...]:
        roots = [root for root, (key, _) in FACTS.items() if key in self.fields]
        if "document" in roots and "client" not in roots:  # a document's client is read with it
            roots.append("client")
        return tuple(roots)

    def has_field(self, path: str) -> bool:
        return path in self.fields or any(f.endswith(".*") and path.startswith(f[:-1]) for f in self.fields)


class TriggerCatalog:
    """Event types (or a family `<service>.<aggregate>.*`, all of one payload) -> TriggerEvent."""

    def __init__(self, events: Mapping[str, TriggerEvent]):
        self.events = dict(events)

    def get(self, event_type: object) -> TriggerEvent | None:
        """The entry of one concrete event type (never a family's name itself: an event is one type)."""
        if not isinstance(event_type, str) or not EVENT_TYPE_RE.match(event_type):
            return None
        return self.events.get(event_type) or self.events.get(event_type.rsplit(".", 1)[0] + ".*")

    def bindings(self) -> list[str]:
        """The routing keys a consumer of every catalogued event binds."""
        return sorted(self.events)


def check_event(catalog: TriggerCatalog, event_type: object, path: str, v: Violations,
                what: str) -> TriggerEvent | None:
    event = catalog.get(event_type)
    if event is None:
        v.add(path, f"is not an event type a workflow can {what}: {event_type!r}; one of "
                    f"{', '.join(catalog.bindings())}")
    return event


def check_condition_fields(conditions: object, event: TriggerEvent, event_type: str, path: str, v: Violations,
                           *, with_vars: bool) -> None:
    """Each condition's field is one the event's context holds: `event.<payload field>`, a fact
    the payload names, `vars.*` when `with_vars`. (Shapes are checked by check_conditions.)"""
    if not isinstance(conditions, list):
        return
    roots = ("event", *event.facts, *(("vars",) if with_vars else ()))
    for i, c in enumerate(conditions):
        field = c.get("field") if isinstance(c, dict) else None
        if not isinstance(field, str) or not field:
            continue
        root, _, rest = field.partition(".")
        p = f"{path}[{i}].field"
        if root not in roots:
            v.add(p, f"{event_type} gives no {root!r} to test: the fields are under {', '.join(roots)}")
        elif root == "event" and not event.has_field(rest):
            v.add(p, f"is not a field of {event_type} ({event.payload}): one of {_listing(event.fields, 'event')}")
        elif root in FACTS and not _fact_field(root, rest):
            v.add(p, f"is not a field of the {root}: one of {_listing(FACTS[root][1], root)}")


def _fact_field(root: str, rest: str) -> bool:
    first, _, below = rest.partition(".")
    if first not in FACTS[root][1]:
        return False
    return not below or first in OPEN.get(root, ())


def _listing(fields: Iterable[str], root: str) -> str:
    return ", ".join(f"{root}.{f}" for f in sorted(fields))
