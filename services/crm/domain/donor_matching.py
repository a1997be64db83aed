"""Rules for finding donors again: search queries, duplicate scores, merges.

Similarity itself is pg_trgm's (computed where the data is); these are its thresholds, the
weights of each duplicate reason, and what a valid query or merge is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chassis.errors import FailedPrecondition, NotFound, Violations

MAX_QUERY = 200
SEARCH_PAGE_DEFAULT = 20
SEARCH_PAGE_MAX = 100
# pg_trgm word similarity of the query to a donor's names and email: "lovelce" finds
# "Lovelace" (0.625 against "ada lovelace ada@example.org"); unrelated names stay well below.
WORD_SIMILARITY_THRESHOLD = 0.5
# A phone query needs this many digits; fewer would match nearly every number.
MIN_PHONE_DIGITS = 4
_PHONE_QUERY = re.compile(r"^[0-9\s+().\-/]+$")

# Duplicates: names at least this similar (pg_trgm similarity) at the same address. Pairs are
# looked for by blocks (store/donor_matching.py): the same email, the same phone, the same
# street and zip, or (between two donors who both have no street and zip) the same city with
# last names that start with the same two letters (unaccented, any case); a pair found so is
# scored with every reason that holds.
NAME_SIMILARITY_THRESHOLD = 0.5
EMAIL_WEIGHT = 0.95
PHONE_WEIGHT = 0.9

SAME_EMAIL = "same_email"
SAME_PHONE = "same_phone"
SIMILAR_NAME_SAME_ADDRESS = "similar_name_same_address"


@dataclass(frozen=True)
class SearchQuery:
    text: str  # whitespace collapsed; the database lower-cases and unaccents it like the donors' search text
    digits: str  # the digits of a phone-number query, else ""


def parse_query(raw: str, field: str, v: Violations) -> SearchQuery:
    text = " ".join(raw.split())
    if not text:
        v.add(field, "is required")
    elif len(text) > MAX_QUERY:
        v.add(field, f"must be at most {MAX_QUERY} characters")
    elif not any(c.isalnum() for c in text):
        v.add(field, "must contain a letter or a digit")
    digits = re.sub(r"[^0-9]", "", text)
    phone_like = bool(_PHONE_QUERY.match(text)) and len(digits) >= MIN_PHONE_DIGITS
    return SearchQuery(text=text, digits=digits if phone_like else "")


def reasons(same_email: bool, same_phone: bool, similar_name: bool) -> list[str]:
    out = []
    if same_email:
        out.append(SAME_EMAIL)
    if same_phone:
        out.append(SAME_PHONE)
    if similar_name:
        out.append(SIMILAR_NAME_SAME_ADDRESS)
    return out


def check_merge_ids(survivor_id: str, merged_id: str, v: Violations) -> None:
    if survivor_id and survivor_id == merged_id:
        v.add("merged_id", "must differ from survivor_id (a donor cannot be merged into itself)")


def check_mergeable(survivor: Any, merged: Any, survivor_id: str, merged_id: str) -> None:
    """Both donors live; the merged one not merged before (rows carry deleted_at, merged_into_id)."""
    if survivor is None or (survivor.deleted_at is not None and survivor.merged_into_id is None):
        raise NotFound(f"donor {survivor_id} not found")
    if survivor.merged_into_id is not None:
        raise FailedPrecondition(f"donor {survivor_id} was merged into another donor; merge into that one",
                                 reason="DONOR_MERGED")
    if merged is None or (merged.deleted_at is not None and merged.merged_into_id is None):
        raise NotFound(f"donor {merged_id} not found")
    if merged.merged_into_id is not None:
        raise FailedPrecondition(f"donor {merged_id} was already merged", reason="DONOR_ALREADY_MERGED")


def check_restorable(row: Any, donor_id: str) -> None:
    if row is None:
        raise NotFound(f"donor {donor_id} not found")
    if row.merged_into_id is not None:
        raise FailedPrecondition(f"donor {donor_id} was merged into another donor and cannot be restored",
                                 reason="DONOR_MERGED")
    if row.deleted_at is None:
        raise FailedPrecondition(f"donor {donor_id} is not deleted", reason="DONOR_NOT_DELETED")
