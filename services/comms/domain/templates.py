"""Templates: names, declared variables, and rendering in Jinja2's sandbox.

A template is rendered by a SandboxedEnvironment with HTML autoescaping (only the HTML body;
text and subject are plain text): it cannot call unsafe methods or reach attributes the
sandbox forbids (`__class__`, `mro`, ...), and it sees only the variables it is given. A
variable that is not declared is refused before rendering; one the template uses but nobody
gave fails (StrictUndefined), so a typo never sends "Dear ,".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from chassis.errors import FailedPrecondition, InvalidArgument, Violations

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
NAME_RULE = "must be 1 to 100 lowercase letters, digits, '_', '-' or '.', starting with a letter or digit"
SUBJECT_MAX = 1000
BODY_MAX = 256 * 1024
VARIABLES_MAX = 100
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
VARIABLES_BYTES_MAX = 64 * 1024
CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
TRANSACTIONAL = "transactional"
# What every template may use without declaring it.
BUILT_IN = ("donor", "organization", "unsubscribe_url", "preferences_url", "signature", "message_id")

_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


@dataclass
class TemplateBody:
    name: str
    channel: str
    category: str
    subject: str
    body_text: str
    body_html: str
    variables: list[str] = field(default_factory=list)
    version: int = 0  # 0: a system template


@dataclass
class Rendered:
    subject: str
    body_text: str
    body_html: str
    version: int


def check_name(name: str, field_path: str, v: Violations) -> None:
    if not NAME.match(name or ""):
        v.add(field_path, NAME_RULE)


def check_category(category: str, field_path: str, v: Violations) -> None:
    if not CATEGORY.match(category or ""):
        v.add(field_path, "must be 1 to 50 lowercase letters, digits, '_' or '-'")


def check_body(t: TemplateBody, prefix: str, v: Violations) -> None:
    v.check_text(f"{prefix}.subject", t.subject, SUBJECT_MAX, required=t.channel == "email")
    v.check_text(f"{prefix}.body_text", t.body_text, BODY_MAX, required=True)
    v.check_text(f"{prefix}.body_html", t.body_html, BODY_MAX)
    if len(t.variables) > VARIABLES_MAX:
        v.add(f"{prefix}.variables", f"at most {VARIABLES_MAX}")
    for i, name in enumerate(t.variables):
        if not VARIABLE_NAME.match(name):
            v.add(f"{prefix}.variables[{i}]", "must be a name of letters, digits and '_'")
        elif name in BUILT_IN:
            v.add(f"{prefix}.variables[{i}]", f"{name!r} is built in; do not declare it")
    if len(set(t.variables)) != len(t.variables):
        v.add(f"{prefix}.variables", "names a variable twice")
    allowed = set(t.variables) | set(BUILT_IN)
    for attr in ("subject", "body_text", "body_html"):
        source = getattr(t, attr)
        try:
            used = meta.find_undeclared_variables(_TEXT.parse(source))
        except TemplateError as exc:
            v.add(f"{prefix}.{attr}", f"is not a valid template: {exc}")
            continue
        unknown = sorted(used - allowed)
        if unknown:
            v.add(f"{prefix}.{attr}", f"uses undeclared variables: {', '.join(unknown)}")


def check_variables(declared: list[str], given: dict[str, Any], field_path: str, v: Violations) -> None:
    unknown = sorted(set(given) - set(declared))
    if unknown:
        v.add(field_path, f"the template does not declare: {', '.join(unknown)}")


@functools.lru_cache(maxsize=2048)
def _compiled(source: str, html: bool):
    """Compiling is most of a render's cost; a template's source compiles once per process."""
    return (_HTML if html else _TEXT).from_string(source)


def render(t: TemplateBody, context: dict[str, Any]) -> Rendered:
    """The template rendered; a sandbox violation or a missing variable is FAILED_PRECONDITION
    (the template, not the request, is at fault) unless the variable was the caller's to give."""
    try:
        subject = _compiled(t.subject, False).render(context).strip().replace("\r", " ").replace("\n", " ")
        text = _compiled(t.body_text, False).render(context)
        html = _compiled(t.body_html, True).render(context) if t.body_html else ""
    except SecurityError as exc:
        raise FailedPrecondition(f"template {t.name!r} tried something the sandbox forbids: {exc}",
                                 reason="TEMPLATE_UNSAFE") from None
    except TemplateError as exc:
        if "is undefined" in str(exc):
            raise InvalidArgument.field("variables", f"template {t.name!r} needs a value: {exc}") from None
        raise FailedPrecondition(f"template {t.name!r} does not render: {exc}", reason="TEMPLATE_BROKEN") from None
    return Rendered(subject[:SUBJECT_MAX], text, html, t.version)


def _sys(name: str, category: str, subject: str, text: str, html: str, variables: list[str],
         channel: str = "email") -> TemplateBody:
    return TemplateBody(name, channel, category, subject, text, html, variables)


# The system templates; an organization's template of the same name overrides one.
SYSTEM: dict[str, TemplateBody] = {t.name: t for t in (
    _sys("email-verification", TRANSACTIONAL, "Confirm your email address",
         "Hello,\n\nConfirm your email address by opening this link:\n{{ link }}\n\n"
         "The link expires at {{ expires }}. If you did not sign up, ignore this email.\n",
         "<p>Hello,</p><p>Confirm your email address: <a href=\"{{ link }}\">{{ link }}</a></p>"
         "<p>The link expires at {{ expires }}. If you did not sign up, ignore this email.</p>",
         ["link", "expires"]),
    _sys("password-reset", TRANSACTIONAL, "Reset your password",
         "Hello,\n\nSomeone asked to reset your password. Choose a new one here:\n{{ link }}\n\n"
         "The link expires at {{ expires }}. If it was not you, ignore this email.\n",
         "<p>Hello,</p><p>Someone asked to reset your password. Choose a new one: "
         "<a href=\"{{ link }}\">{{ link }}</a></p><p>The link expires at {{ expires }}. If it was not you, "
         "ignore this email.</p>",
         ["link", "expires"]),
    _sys("invitation", TRANSACTIONAL, "You are invited to join {{ organization.name }} on Givance",
         "Hello,\n\nYou are invited to join {{ organization.name }} as {{ role }}. Accept here:\n{{ link }}\n\n"
         "The invitation expires at {{ expires }}.\n",
         "<p>Hello,</p><p>You are invited to join {{ organization.name }} as {{ role }}. "
         "<a href=\"{{ link }}\">Accept the invitation</a> ({{ link }})</p><p>It expires at {{ expires }}.</p>",
         ["link", "role", "expires"]),
    _sys("consent-confirmation", TRANSACTIONAL, "Please confirm: email from {{ organization.name }}",
         "Hello,\n\nPlease confirm that you want to receive {{ categories }} from {{ organization.name }}:\n"
         "{{ confirm_url }}\n\nIf you did not ask for this, ignore this email: nothing will be sent.\n",
         "<p>Hello,</p><p>Please confirm that you want to receive {{ categories }} from {{ organization.name }}: "
         "<a href=\"{{ confirm_url }}\">confirm</a> ({{ confirm_url }})</p>"
         "<p>If you did not ask for this, ignore this email: nothing will be sent.</p>",
         ["confirm_url", "categories"]),
    _sys("phone-verification", TRANSACTIONAL, "", "Your Givance code is {{ code }}", "", ["code"], channel="sms"),
    _sys("thank-you", "thank-you", "Thank you, {{ donor.first_name or 'friend' }}",
         "Dear {{ donor.first_name or 'friend' }},\n\nThank you for your gift of {{ amount }} on {{ date }}. "
         "It makes our work possible.\n\n{{ signature }}\n",
         "<p>Dear {{ donor.first_name or 'friend' }},</p><p>Thank you for your gift of {{ amount }} on {{ date }}. "
         "It makes our work possible.</p><p>{{ signature }}</p>",
         ["amount", "date"]),
    # what crm's shipped "lapsed donor sequence" workflow sends (its send_message step's variables)
    _sys("lapsed-donor-reminder", "appeals", "We miss you, {{ first_name or 'friend' }}",
         "Dear {{ first_name or 'friend' }},\n\nYour last gift, on {{ last_gift_date }}, made a difference. "
         "We would love to have you with us again this year.\n\n{{ signature }}\n",
         "<p>Dear {{ first_name or 'friend' }},</p><p>Your last gift, on {{ last_gift_date }}, made a difference. "
         "We would love to have you with us again this year.</p><p>{{ signature }}</p>",
         ["first_name", "last_gift_date"]),
    _sys("receipt", "receipts", "Your {{ year }} giving receipt",
         "Dear {{ donor.first_name or 'friend' }},\n\nAttached is your receipt for {{ year }}: "
         "{{ total }} in {{ gift_count }} gift(s). Thank you.\n\n{{ signature }}\n",
         "<p>Dear {{ donor.first_name or 'friend' }},</p><p>Attached is your receipt for {{ year }}: "
         "{{ total }} in {{ gift_count }} gift(s). Thank you.</p><p>{{ signature }}</p>",
         ["year", "total", "gift_count"]),
    # A generated email of an AI session (its writer signs it, so no organization signature: {# signature #}).
    _sys("ai-email", "outreach", "{{ subject }}",
         "{{ body }}\n\n--\nTo get no more of these emails: {{ unsubscribe_url }}\n"
         "{# the writer signs: no signature #}",
         "<div>{{ body_html }}</div><p style=\"font-size:small;color:#666\">"
         "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
         ["subject", "body", "body_html"]),
)}

# `donor` when a message goes to an address rather than a donor: the fields are there, empty.
NO_DONOR = {"id": "", "first_name": "", "last_name": "", "email": "", "display_name": "", "salutation": ""}
SAMPLE_DONOR = {"id": "", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org",
                "display_name": "Ada Lovelace", "salutation": "Ada Lovelace"}
