"""A stub that remembers which of its service's methods a test called: a tenant-isolation test
calls every one as another tenant and then asserts `uncalled()` is empty, so a new RPC added
without its isolation check fails that test."""

from __future__ import annotations

from types import ModuleType


class EveryRpc:
    def __init__(self, stub: object, service_module: ModuleType, service: str):
        self._stub = stub
        self._methods = set(service_module.DESCRIPTOR.services_by_name[service].methods_by_name)
        self.called: set[str] = set()

    def __getattr__(self, name: str):
        if name in self._methods:
            self.called.add(name)
        return getattr(self._stub, name)

    def uncalled(self) -> set[str]:
        return self._methods - self.called
