"""Password rules after NIST SP 800-63B (section 5.1.1.2).

Length over composition: at least 12 and at most 256 characters, any characters (spaces and
Unicode included, compared after NFKC normalisation), no rules about character classes and
no forced rotation. A password is refused when it is known to be common (the password
frequency list zxcvbn ships, about 30,000 entries, also with digits or symbols stuck on
either end), when it is a run of one character or a short repeated pattern, or when it is
the user's own email, email name or name.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

from chassis.errors import Violations

PASSWORD_MIN = 12
PASSWORD_MAX = 256
# Words a password for this service must not be built on (context-specific, per 800-63B).
SERVICE_WORDS = ("givance",)

_EDGES = re.compile(r"^[\d\W_]+|[\d\W_]+$")
_NON_ALNUM = re.compile(r"[\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, field: str, violations: Violations, *, email: str = "",
                   first_name: str = "", last_name: str = "") -> None:
    """Adds a violation on `field` when the password breaks a rule (at most one, the first)."""
    problem = password_problem(password, email=email, first_name=first_name, last_name=last_name)
    if problem:
        violations.add(field, problem)


def password_problem(password: str, *, email: str = "", first_name: str = "", last_name: str = "") -> str:
    password = normalize(password)
    if len(password) < PASSWORD_MIN:
        return f"must be at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"must be at most {PASSWORD_MAX} characters"
    lowered = password.lower()
    if _repetitive(lowered):
        return "is a repeated pattern or a run; choose a less predictable phrase"
    common = common_passwords()
    squeezed = _NON_ALNUM.sub("", lowered)
    core = _EDGES.sub("", lowered)
    if (lowered in common or squeezed in common or (len(core) >= 4 and core in common)
            or _NON_ALNUM.sub("", core) in SERVICE_WORDS):
        return "is too common; choose a less predictable phrase"
    if _personal(lowered, email, first_name, last_name):
        return "must not be your email address or name"
    return ""


def _repetitive(lowered: str) -> bool:
    """One character or a pattern of up to 4 characters repeated (`aaaaaaaaaaaa`, `abcabcabcabc`),
    or a run up or down the alphabet or the digits (`abcdefghijkl`, `123456789012`)."""
    for period in range(1, 5):
        unit = lowered[:period]
        if (unit * (len(lowered) // period + 1))[: len(lowered)] == lowered:
            return True
    if lowered.isdigit():
        steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(lowered)}
        return steps in ({1}, {9})
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(lowered)}
    return steps in ({1}, {-1})


def _personal(lowered: str, email: str, first_name: str, last_name: str) -> bool:
    squeezed = _NON_ALNUM.sub("", lowered)
    core = _NON_ALNUM.sub("", _EDGES.sub("", lowered))
    email = email.strip().lower()
    local = email.partition("@")[0]
    words = {email, local, first_name.strip().lower(), last_name.strip().lower(),
             f"{first_name} {last_name}".strip().lower(), f"{last_name} {first_name}".strip().lower()}
    for word in filter(None, words):
        w = _NON_ALNUM.sub("", word)
        if len(w) < 3:
            continue
        if lowered == word or squeezed == w or core == w:
            return True
    return False
