"""Consent: the categories a person may choose on the preference page, what their history says
about each, and double opt-in.

A consent change is a row of history (comms.consent_changes): a category (or '*', everything),
granted or withdrawn, pending while a double opt-in grant waits for its confirmation, with its
source and evidence. A person's word on a category is the latest row of the category or of '*'.

- Without double opt-in a category is sent unless withdrawn (donors have given; they may refuse).
- With double opt-in (the organization's setting) a category is sent only after a confirmed
  grant: a grant stays pending until the confirmation link's page is submitted.
- Transactional mail (account mail, receipts) needs no consent and is not on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CATEGORIES = ("newsletters", "appeals")
TRANSACTIONAL_CATEGORIES = ("transactional", "receipts")
EVERYTHING = "*"
SUBSCRIBED, PENDING, UNSUBSCRIBED = "subscribed", "pending", "unsubscribed"
FORM_FIELDS_MAX = 60


@dataclass(frozen=True)
class Word:
    """The latest consent change that speaks for a category."""

    granted: bool
    pending: bool


def state(word: Word | None, double_opt_in: bool) -> str:
    """subscribed, pending or unsubscribed: what the preference page shows and sending obeys."""
    if word is None:
        return UNSUBSCRIBED if double_opt_in else SUBSCRIBED
    if not word.granted:
        return UNSUBSCRIBED
    return PENDING if word.pending else SUBSCRIBED


def categories(template_categories: list[str]) -> list[str]:
    """The organization's consent categories: the defaults and every category its templates use
    (and the thank-you's), never the transactional ones; sorted."""
    found = set(DEFAULT_CATEGORIES) | {"thank-you"} | set(template_categories)
    return sorted(c for c in found if c not in TRANSACTIONAL_CATEGORIES and c != EVERYTHING)


def word_for(latest: dict[str, tuple[int, Word]], category: str) -> Word | None:
    """The later of the category's own latest change and the latest change to everything."""
    own, every = latest.get(category), latest.get(EVERYTHING)
    best = max((x for x in (own, every) if x is not None), key=lambda x: x[0], default=None)
    return best[1] if best else None


@dataclass(frozen=True)
class Change:
    category: str
    granted: bool
    pending: bool


def changes(current: dict[str, str], wanted: set[str], double_opt_in: bool) -> list[Change]:
    """What the preference page's submission changes: a category ticked that is not subscribed
    (nor pending) is granted (pending under double opt-in); one unticked that is subscribed or
    pending is withdrawn. Categories not on the page are left alone."""
    out = []
    for category, now in sorted(current.items()):
        if category in wanted and now == UNSUBSCRIBED:
            out.append(Change(category, True, double_opt_in))
        elif category not in wanted and now in (SUBSCRIBED, PENDING):
            out.append(Change(category, False, False))
    return out


def text_footer(preferences_url: str, unsubscribe_url: str) -> str:
    return (f"\n\n--\nChoose what you receive from us: {preferences_url}\n"
            f"Unsubscribe: {unsubscribe_url}\n")


def html_footer(preferences_url: str, unsubscribe_url: str, escape) -> str:
    return (f'<p style="font-size:12px;color:#666">'
            f'<a href="{escape(preferences_url)}">Choose what you receive from us</a> · '
            f'<a href="{escape(unsubscribe_url)}">Unsubscribe</a></p>')
