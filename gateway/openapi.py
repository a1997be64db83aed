"""OpenAPI 3.1 from the descriptors: one operation per routed RPC, a schema per message and
enum (the proto3 JSON mapping: lowerCamel names, 64-bit integers and bytes as strings, enums by
name, well-known types in their JSON forms), the bearer token and the tenant header as
security schemes, and AIP-193's error body as the default response."""

from __future__ import annotations

import re

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.routes import Route, repeated

F = FieldDescriptor
_INT32 = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32}
_UINT32 = {F.TYPE_UINT32, F.TYPE_FIXED32}
_INT64 = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64}
_WKT = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "additionalProperties": True},
}
for _n, _t in (("Double", "number"), ("Float", "number"), ("Int32", "integer"), ("UInt32", "integer"),
               ("Int64", "string"), ("UInt64", "string"), ("Bool", "boolean"), ("String", "string"),
               ("Bytes", "string")):
    _WKT[f"google.protobuf.{_n}Value"] = {"type": [_t, "null"]}

ERROR = "google.rpc.Status"
ERROR_SCHEMA = {
    "type": "object",
    "description": "AIP-193: the HTTP status, the canonical code's name, a message, and google.rpc details "
                   "(BadRequest field violations, ErrorInfo).",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "integer", "description": "the HTTP status"},
        "status": {"type": "string", "description": "the canonical code, e.g. NOT_FOUND"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "properties": {"@type": {"type": "string"}}}},
    }}},
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, dict] = {ERROR: ERROR_SCHEMA}

    def ref(self, name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, desc: Descriptor) -> dict:
        if desc.full_name in _WKT:
            return dict(_WKT[desc.full_name])
        if desc.full_name not in self.components:
            self.components[desc.full_name] = {}  # recursion guard
            props = {f.json_name: self.field(f) for f in desc.fields}
            self.components[desc.full_name] = {"type": "object", "properties": props}
        return self.ref(desc.full_name)

    def enum(self, desc: EnumDescriptor) -> dict:
        if desc.full_name not in self.components:
            self.components[desc.full_name] = {"type": "string", "enum": [v.name for v in desc.values]}
        return self.ref(desc.full_name)

    def scalar(self, f: FieldDescriptor) -> dict:
        t = f.type
        if t == F.TYPE_MESSAGE:
            return self.message(f.message_type)
        if t == F.TYPE_ENUM:
            return self.enum(f.enum_type)
        if t == F.TYPE_BOOL:
            return {"type": "boolean"}
        if t == F.TYPE_STRING:
            return {"type": "string"}
        if t == F.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if t in _INT32:
            return {"type": "integer", "format": "int32"}
        if t in _UINT32:
            return {"type": "integer", "format": "int32", "minimum": 0}
        if t in _INT64:
            return {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
        return {"type": "number"}

    def field(self, f: FieldDescriptor) -> dict:
        if f.type == F.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.scalar(f.message_type.fields_by_name["value"])}
        if repeated(f):
            return {"type": "array", "items": self.scalar(f)}
        return self.scalar(f)


def _query_params(schemas: _Schemas, desc: Descriptor, prefix: str = "", depth: int = 0) -> list[dict]:
    out = []
    for f in desc.fields:
        name = prefix + f.name
        if f.type == F.TYPE_MESSAGE and f.message_type.full_name not in _WKT:
            if depth < 2 and not repeated(f):
                out += _query_params(schemas, f.message_type, name + ".", depth + 1)
            continue
        if f.type == F.TYPE_MESSAGE and repeated(f):
            continue
        param = {"name": name, "in": "query", "required": False, "schema": schemas.field(f)}
        if repeated(f):
            param.update(style="form", explode=True)
        out.append(param)
    return out


def operation(schemas: _Schemas, r: Route) -> dict:
    req: Descriptor = r.method.input_type
    params = [{"name": _path_name(v), "in": "path", "required": True, "description": f"sets {v}",
               "schema": {"type": "string", "minLength": 1}} for v in r.variables]
    if r.body != "*" and not r.client_streaming:
        bound = r.bound
        params += [p for p in _query_params(schemas, req) if p["name"].split(".")[0] not in bound]
    if "request_id" in req.fields_by_name:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "sets request_id (AIP-155): a retry returns the first result"})
    if "etag" in req.fields_by_name or (r.body not in ("", "*") and "etag" in
                                        req.fields_by_name[r.body].message_type.fields_by_name):
        params.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "sets the etag: the call fails (409 ABORTED) when the resource changed"})
    op: dict = {
        "operationId": f"{r.method.containing_service.name}_{r.method.name}",
        "tags": [r.method.containing_service.name],
        "summary": f"{r.method.containing_service.full_name}.{r.method.name}",
        "parameters": params,
        "security": [] if r.public else [{"bearer": [], "tenant": []}],
    }
    if r.client_streaming:
        content = {"application/x-ndjson": {"schema": schemas.message(req)}}
        raw = next((f for f in req.fields if f.type == F.TYPE_BYTES), None)
        if raw is not None:  # gateway.uploads: the raw body, or a multipart file part, into that field
            content["text/csv"] = {"schema": {"type": "string"}}
            content["multipart/form-data"] = {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream",
                                        "description": f"streamed into {raw.name}"}}}}
        op["requestBody"] = {"required": True, "content": content}
    elif r.body == "*":
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": schemas.message(req)}}}
    elif r.body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": schemas.field(req.fields_by_name[r.body])}}}
    resp = schemas.message(r.method.output_type)
    if r.server_streaming:
        ok = {"description": "a stream: one JSON object per line, {\"result\": ...} or a final {\"error\": ...}",
              "content": {"application/x-ndjson": {"schema": {"type": "object", "properties": {
                  "result": resp, "error": ERROR_SCHEMA["properties"]["error"]}}},
                  "text/event-stream": {"schema": {"type": "string"}}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": resp}}}
        if r.etag_path:
            ok["headers"] = {"ETag": {"schema": {"type": "string"}, "description": "the resource's etag"}}
    op["responses"] = {"200": ok, "default": {"description": "an error (AIP-193)",
                                               "content": {"application/json": {"schema": schemas.ref(ERROR)}}}}
    return op


def _path_name(variable: str) -> str:
    """`donor.id` -> `donor_id`: OpenAPI tools want plain names in a path template."""
    return variable.replace(".", "_")


def openapi_path(r: Route) -> str:
    path = r.template
    for v in r.variables:
        path = re.sub(r"\{" + re.escape(v) + r"(=[^}]*)?\}", "{" + _path_name(v) + "}", path)
    return path


def document(routes: list[Route]) -> dict:
    schemas = _Schemas()
    paths: dict[str, dict] = {}
    for r in sorted(routes, key=lambda r: r.template):
        path = openapi_path(r)
        paths.setdefault(path, {})[r.verb.lower()] = operation(schemas, r)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Givance API", "version": "v1",
                 "description": "HTTP/JSON over the Givance gRPC APIs (google.api.http rules, proto3 JSON). "
                                "Send `Authorization: Bearer <access token>` and `x-tenant-id: <organization id>`."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "tenant": {"type": "apiKey", "in": "header", "name": "x-tenant-id"},
            },
        },
    }
