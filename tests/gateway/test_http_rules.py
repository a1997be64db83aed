"""Every public RPC of every listed service carries a google.api.http rule (AIP-127), and the
gateway routes each of them; an RPC its auth option marks internal needs none."""

from __future__ import annotations

from chassis.spec import listed_services
from gateway.routes import Router, build_routes, compile_template, method_rules, service_modules


def _internal(auth) -> bool:
    # An internal-only RPC says so in its auth option (a field such as `internal: true`).
    return any(auth.DESCRIPTOR.fields_by_name.get(n) is not None and getattr(auth, n)
               for n in ("internal", "internal_only"))


def public_methods():
    for module in service_modules(listed_services()):
        for svc in module.DESCRIPTOR.services_by_name.values():
            for method in svc.methods:
                auth, http = method_rules(method)
                if auth is not None and not _internal(auth):
                    yield method, http


def test_every_public_rpc_has_an_http_rule():
    methods = list(public_methods())
    assert len(methods) > 50
    missing = [m.full_name for m, http in methods if http is None or http.WhichOneof("pattern") is None]
    assert not missing, f"RPCs without a google.api.http rule: {missing}"


def test_every_rule_is_routed_and_no_two_rules_collide():
    routes = build_routes(listed_services())
    assert {r.method.full_name for r in routes} == {m.full_name for m, _ in public_methods()}
    router = Router(routes)
    seen = {}
    for r in routes:
        key = (r.verb, r.pattern.pattern)
        assert key not in seen, f"{r.method.full_name} and {seen[key]} share {r.verb} {r.template}"
        seen[key] = r.method.full_name
        # A concrete path made from the template reaches this route, not another one.
        path = r.template
        for v in r.variables:
            path = path.replace("{" + v + "}", "abc123")
        found, variables, _ = router.match(r.verb, path)
        assert found is r, f"{r.verb} {path} reached {found and found.method.full_name}, not {r.method.full_name}"
        assert set(variables) == set(r.variables)


def test_templates_compile_per_the_http_rule_grammar():
    pattern, variables = compile_template("/v1/donors/{donor.id}")
    assert variables == ["donor.id"] and pattern.fullmatch("/v1/donors/abc").groups() == ("abc",)
    assert pattern.fullmatch("/v1/donors/a/b") is None
    pattern, variables = compile_template("/v1/donors/{id}:restore")
    assert pattern.fullmatch("/v1/donors/x1:restore").groups() == ("x1",)
    assert pattern.fullmatch("/v1/donors/x1") is None
    pattern, variables = compile_template("/v1/{name=organizations/*/donors/*}")
    assert pattern.fullmatch("/v1/organizations/o1/donors/d1").groups() == ("organizations/o1/donors/d1",)
