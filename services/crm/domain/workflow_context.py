"""A running workflow's context: reading it by dotted path, filling {{path}} placeholders from
it, evaluating conditions on it, and an event's payload made comparable (money as numbers).
No SQL, no grpc."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def lookup(ctx: dict, path: str) -> tuple[bool, Any]:
    cur: Any = ctx
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def render(value: Any, ctx: dict) -> Any:
    """{{path}} placeholders filled from ctx; a string that is one placeholder keeps its value's type."""
    if isinstance(value, str):
        whole = PLACEHOLDER_RE.fullmatch(value.strip())
        if whole:
            found, got = lookup(ctx, whole.group(1))
            return got if found else ""

        def one(m: re.Match) -> str:
            found, got = lookup(ctx, m.group(1))
            return "" if not found or got is None else str(got)

        return PLACEHOLDER_RE.sub(one, value)
    if isinstance(value, dict):
        return {k: render(x, ctx) for k, x in value.items()}
    if isinstance(value, list):
        return [render(x, ctx) for x in value]
    return value


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


def _compare(op: str, a: Any, b: Any) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        a, b = na, nb
    elif isinstance(a, bool) or isinstance(b, bool):
        pass
    else:
        a, b = ("" if a is None else str(a)), ("" if b is None else str(b))
    try:
        return {"eq": a == b, "ne": a != b}[op] if op in ("eq", "ne") else {
            "gt": lambda: a > b, "gte": lambda: a >= b, "lt": lambda: a < b, "lte": lambda: a <= b}[op]()
    except TypeError:
        return False


def matches(conditions: list[dict], ctx: dict, *, values_from: dict | None = None) -> bool:
    """All conditions hold on ctx. A condition's value may be a {{placeholder}} filled from
    `values_from` (the execution's context for a wait's match), else from ctx."""
    for c in conditions or []:
        op = c.get("op", "eq")
        found, got = lookup(ctx, c["field"])
        if op == "exists":
            if found != bool(c.get("value", True)):
                return False
            continue
        want = render(c.get("value"), values_from if values_from is not None else ctx)
        if op in ("in", "not_in"):
            inside = any(_compare("eq", got, w) for w in want or [])
            if inside != (op == "in"):
                return False
        elif op == "contains":
            if isinstance(got, list):
                if not any(_compare("eq", g, want) for g in got):
                    return False
            elif str(want) not in str(got if got is not None else ""):
                return False
        elif not found and op != "ne":
            return False
        elif not _compare(op, got, want):
            return False
    return True


def flatten_money(value: Any) -> Any:
    """A payload as JSON with every google.type.Money ({currency_code, units, nanos}) turned into a
    number, and its currency beside it as <name>_currency: conditions compare amounts as numbers."""
    if isinstance(value, dict):
        out: dict = {}
        for k, x in value.items():
            if isinstance(x, dict) and "currency_code" in x and set(x) <= {"currency_code", "units", "nanos"}:
                units, nanos = int(x.get("units", 0) or 0), int(x.get("nanos", 0) or 0)
                out[k] = units + nanos / 1e9 if nanos else units
                out[f"{k}_currency"] = x["currency_code"]
            else:
                out[k] = flatten_money(x)
        return out
    if isinstance(value, list):
        return [flatten_money(x) for x in value]
    return value
