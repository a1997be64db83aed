"""The gateway's routes, built at start from the descriptors: every RPC of every listed
service that carries a `google.api.http` rule (AIP-127) becomes one HTTP route. Nothing here
names a method: a new service's rules are picked up when its name joins the service list.

A path template (`/v1/donors/{donor.id}`, `/v1/donors/{id}:restore`) compiles to a regular
expression whose groups are the request fields its variables bind; a variable matches one
segment (`{x}` = `{x=*}`) or the segments its pattern names (`{name=donors/*}`, `**`).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field

from givance.options.v1 import auth_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor

_VAR = re.compile(r"\{([A-Za-z_][\w.]*)(?:=([^}]*))?\}")


@dataclass
class Route:
    service: str  # the proto package's service name: "crm", "identity"
    method: MethodDescriptor
    verb: str  # GET, POST, PATCH, PUT, DELETE
    template: str
    pattern: re.Pattern
    variables: list[str]  # request field paths, in the order of the pattern's groups
    body: str  # "" (none), "*" or a top-level request field
    public: bool
    permission: str
    request_cls: type = field(repr=False, default=None)
    response_cls: type = field(repr=False, default=None)
    etag_path: tuple[str, ...] = ()  # where the response carries an etag: ("donor", "etag")

    @property
    def label(self) -> str:
        """The route in metrics: `GET /v1/donors/{id}` (a template, so ids never make new series)."""
        return self._label

    def __post_init__(self) -> None:
        self._label = f"{self.verb} {self.template}"

    @property
    def full_method(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def client_streaming(self) -> bool:
        return self.method.client_streaming

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def bound(self) -> set[str]:
        """Top-level request fields the path or the body fill (the query fills the rest)."""
        names = {v.split(".")[0] for v in self.variables}
        if self.body and self.body != "*":
            names.add(self.body)
        return names


def repeated(fd: FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)  # protobuf 6; label is deprecated there
    return bool(flag) if flag is not None else fd.label == FieldDescriptor.LABEL_REPEATED


def compile_template(template: str) -> tuple[re.Pattern, list[str]]:
    path, verb = template, ""
    last = template.rsplit("/", 1)[-1]
    if ":" in last and "}" not in last.split(":")[-1]:
        path, verb = template.rsplit(":", 1)
    out, variables, pos = [], [], 0
    for m in _VAR.finditer(path):
        out.append(re.escape(path[pos:m.start()]))
        variables.append(m.group(1))
        pattern = m.group(2) or "*"
        parts = [("[^/]+" if p == "*" else ".+" if p == "**" else re.escape(p)) for p in pattern.split("/")]
        out.append(f"({'/'.join(parts)})")
        pos = m.end()
    out.append(re.escape(path[pos:]))
    if verb:
        out.append(re.escape(":" + verb))
    return re.compile("".join(out)), variables


def _rules(rule: http_pb2.HttpRule) -> list[http_pb2.HttpRule]:
    return [rule, *rule.additional_bindings]


def _etag_path(msg: descriptor.Descriptor) -> tuple[str, ...]:
    if "etag" in msg.fields_by_name:
        return ("etag",)
    for f in msg.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE and not repeated(f) \
                and "etag" in f.message_type.fields_by_name:
            return (f.name, "etag")
    return ()


def service_modules(services: list[str]) -> list:
    """The generated `*_service_pb2` modules of each service's package (givance.<name>.v1)."""
    modules = []
    for name in services:
        try:
            package = importlib.import_module(f"givance.{name}.v1")
        except ModuleNotFoundError:
            continue
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name.endswith("_service_pb2"):
                modules.append(importlib.import_module(f"givance.{name}.v1.{info.name}"))
    return modules


def method_rules(method: MethodDescriptor) -> tuple[auth_pb2.AuthRule | None, http_pb2.HttpRule | None]:
    opts = method.GetOptions()
    auth = opts.Extensions[auth_pb2.auth] if opts.HasExtension(auth_pb2.auth) else None
    http = opts.Extensions[annotations_pb2.http] if opts.HasExtension(annotations_pb2.http) else None
    return auth, http


def build_routes(services: list[str]) -> list[Route]:
    routes: list[Route] = []
    for module in service_modules(services):
        for svc in module.DESCRIPTOR.services_by_name.values():
            backend = svc.full_name.split(".")[1]
            for method in svc.methods:
                auth, http = method_rules(method)
                if http is None:
                    continue
                for rule in _rules(http):
                    verb = rule.WhichOneof("pattern")
                    if verb is None or verb == "custom":
                        continue
                    template = getattr(rule, verb)
                    pattern, variables = compile_template(template)
                    routes.append(Route(
                        service=backend, method=method, verb=verb.upper(), template=template, pattern=pattern,
                        variables=variables, body=rule.body, public=bool(auth and auth.public),
                        permission=auth.permission if auth else "",
                        request_cls=message_factory.GetMessageClass(method.input_type),
                        response_cls=message_factory.GetMessageClass(method.output_type),
                        etag_path=_etag_path(method.output_type)))
    # Literal templates before templated ones, longer first: `/v1/donors:search` never falls to a variable.
    routes.sort(key=lambda r: (len(r.variables), -len(r.template)))
    return routes


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._by_verb: dict[str, list[Route]] = {}
        self._literal: dict[tuple[str, str], Route] = {}
        for r in routes:
            if r.variables:
                self._by_verb.setdefault(r.verb, []).append(r)
            else:
                self._literal.setdefault((r.verb, r.template), r)

    def match(self, verb: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, variables, allowed verbs when only another verb matches)."""
        literal = self._literal.get((verb, path))
        if literal is not None:
            return literal, {}, []
        for r in self._by_verb.get(verb, ()):
            m = r.pattern.fullmatch(path)
            if m:
                return r, dict(zip(r.variables, m.groups(), strict=True)), []
        return None, {}, self.verbs(path)

    def verbs(self, path: str) -> list[str]:
        """Every verb some route answers at `path` (405's Allow, a CORS preflight's methods)."""
        return sorted({r.verb for r in self.routes if r.pattern.fullmatch(path)})
