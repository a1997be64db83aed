"""Every RPC of every Givance service declares its authorization rule; one that doesn't is refused."""

import importlib
from pathlib import Path

import givance
import grpc
import pytest

from chassis.rpc import ServerInterceptor, auth_rules


def _all_services() -> list[str]:
    """Every service in the generated code (namespace packages: walk the files)."""
    names = []
    for root in givance.__path__:
        for path in sorted(Path(root).rglob("*_service_pb2.py")):
            module = importlib.import_module("givance." + ".".join(path.relative_to(root).with_suffix("").parts))
            names += [s.full_name for s in module.DESCRIPTOR.services_by_name.values()]
    return names


def test_every_rpc_declares_a_permission_or_is_public():
    services = _all_services()
    assert "givance.crm.v1.DonorService" in services and "givance.identity.v1.IdentityService" in services
    rules = auth_rules(services)
    assert len(rules) >= 12
    missing = [m for m, r in rules.items() if r is None or not (r.public or r.permission)]
    assert missing == [], f"RPCs without a givance.options.v1.auth rule: {missing}"


class _Aborted(Exception):
    pass


class _Ctx:
    code = None

    def peer(self):
        return "ipv4:127.0.0.1:1234"

    def invocation_metadata(self):
        return _Details.invocation_metadata

    async def abort(self, code, details, trailing_metadata=()):
        self.code = code
        raise _Aborted(details)


class _Details:
    method = "/givance.crm.v1.DonorService/GetDonor"
    invocation_metadata = (("authorization", "Bearer whatever"), ("x-tenant-id", "x"))


async def test_a_method_whose_rule_is_missing_is_refused_even_to_a_superuser():
    interceptor = ServerInterceptor(verifier=None, service_names=["givance.crm.v1.DonorService"], domain="crm")
    interceptor.rules[_Details.method] = None  # as if the proto had lost its option
    called = []

    async def behavior(request, ctx):
        called.append(request)
        return "ok"

    async def continuation(details):
        return grpc.unary_unary_rpc_method_handler(behavior)

    handler = await interceptor.intercept_service(continuation, _Details())
    ctx = _Ctx()
    with pytest.raises(_Aborted):
        await handler.unary_unary("req", ctx)
    assert ctx.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    assert called == []
