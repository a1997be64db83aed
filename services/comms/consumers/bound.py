"""Consumer handlers that need comms' dependencies (keys, providers).

`bind(deps)` (in __main__.py, before any consumer starts) registers a service instance's
dependencies under its database engine; a handler finds its own instance's through the unit
of work it is given, so two comms hosts in one process (tests) never share providers.
"""

from __future__ import annotations

from chassis.db import UnitOfWork
from services.comms.handlers.deps import Deps

_BY_ENGINE: dict[int, Deps] = {}


class Bound:
    """A consumer handler that reads its service instance's dependencies from `deps_for(uow)`."""

    @staticmethod
    def deps_for(uow: UnitOfWork) -> Deps:
        deps = _BY_ENGINE.get(id(uow._engine))
        if deps is None:
            raise RuntimeError("comms' dependencies are not bound for this database")
        return deps


def bind(deps: Deps) -> None:
    _BY_ENGINE[id(deps.db.engine)] = deps


def unbind(deps: Deps) -> None:
    _BY_ENGINE.pop(id(deps.db.engine), None)
