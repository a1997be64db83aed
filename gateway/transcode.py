"""HTTP -> request message, response message -> JSON, gRPC status -> HTTP error, per the
HttpRule mapping and the proto3 JSON mapping (json_format), as Envoy's transcoder does.

Request: the body (`body: "*"`: the whole request; `body: "donor"`: that field) is proto3 JSON;
fields not bound by the path or the body come from the query (`?page_size=10&donor.email=x`,
repeated fields by repeating the parameter, enums by name, timestamps in RFC 3339, field
masks as `a,b.c`); path variables come last and win. `Idempotency-Key` fills `request_id` and
`If-Match` fills `etag` (top-level, else the body resource's) when the request has one; the
services' etags are HTTP entity-tags already (`W/"3"`), sent and taken verbatim.

Errors: AIP-193's JSON, `{"error": {"code": <HTTP status>, "status": "NOT_FOUND", "message":
..., "details": [...]}}` with the google.rpc.Status details the service sent (BadRequest field
violations, ErrorInfo). INTERNAL, UNKNOWN and DATA_LOSS never carry the service's text.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from gateway.routes import Route, repeated

# AIP-193 / google/rpc/code.proto: the HTTP status of each canonical code.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409, grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DATA_LOSS: 500,
}
HIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
_WKT_STRINGS = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}


class HttpError(Exception):
    """An error the gateway itself answers with (bad input, unknown route, limits)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, violations: list[tuple[str, str]] = (),
                 http_status: int | None = None, headers: dict[str, str] | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.violations = list(violations)
        self.http_status = http_status or HTTP_STATUS[code]
        self.headers = headers or {}
        self.reason = reason


def error_body(code: grpc.StatusCode, message: str, details: list[Any] = (), http_status: int | None = None) -> dict:
    status = http_status or HTTP_STATUS.get(code, 500)
    return {"error": {"code": status, "status": code.name, "message": message, "details": list(details)}}


def gateway_error(err: HttpError) -> dict:
    details = []
    if err.violations:
        br = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in err.violations])
        details.append(_any_json(br))
    if err.reason:
        details.append(_any_json(error_details_pb2.ErrorInfo(reason=err.reason, domain="gateway")))
    return error_body(err.code, err.message, details, err.http_status)


def rpc_error(exc: grpc.aio.AioRpcError, request_id: str) -> tuple[int, dict]:
    code = exc.code()
    if code in HIDDEN:
        return HTTP_STATUS[code], error_body(code, f"internal error (request id {request_id})")
    details = []
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for any_msg in status.details:
                try:
                    details.append(json_format.MessageToDict(any_msg))
                except (json_format.Error, TypeError):  # a detail type this gateway does not know
                    continue
    return HTTP_STATUS.get(code, 500), error_body(code, exc.details() or code.name, details)


def _any_json(msg: Message) -> dict:
    return {"@type": f"type.googleapis.com/{msg.DESCRIPTOR.full_name}", **json_format.MessageToDict(msg)}


def _field(desc: Descriptor, name: str) -> FieldDescriptor | None:
    f = desc.fields_by_name.get(name)
    if f is None:
        f = next((x for x in desc.fields if x.json_name == name), None)
    return f


def _query_dict(route: Route, query: list[tuple[str, str]]) -> dict:
    out: dict = {}
    bound = route.bound
    for key, value in query:
        desc: Descriptor = route.request_cls.DESCRIPTOR
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts):
            f = _field(desc, part)
            if f is None or (i == 0 and f.name in bound):
                raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown query parameter {key!r}",
                                violations=[(key, "not a field of the request that the query may set")])
            last = i == len(parts) - 1
            is_msg = f.type == FieldDescriptor.TYPE_MESSAGE
            wkt = is_msg and f.message_type.full_name in _WKT_STRINGS
            if last:
                if is_msg and not wkt and f.message_type.full_name not in _WRAPPERS:
                    raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"query parameter {key!r} names a message",
                                    violations=[(key, "set its fields (name.field=value)")])
                if repeated(f):
                    node.setdefault(f.name, []).append(value)
                elif f.message_type is not None and f.message_type.full_name == "google.protobuf.FieldMask":
                    node[f.name] = ",".join(_camel(p) for p in value.split(",") if p)
                else:
                    node[f.name] = value
            else:
                if not is_msg or repeated(f) or wkt:
                    raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown query parameter {key!r}",
                                    violations=[(key, "not a field of the request that the query may set")])
                node = node.setdefault(f.name, {})
                desc = f.message_type
    return out


_WRAPPERS = {f"google.protobuf.{n}Value" for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32",
                                                  "Bool", "String", "Bytes")}


def _camel(path: str) -> str:
    """A field mask path in snake_case or lowerCamel -> lowerCamel (the JSON form json_format parses)."""
    return ".".join(p.split("_")[0] + "".join(w[:1].upper() + w[1:] for w in p.split("_")[1:])
                    for p in path.split("."))


def _nest(paths: dict[str, str]) -> dict:
    out: dict = {}
    for path, value in paths.items():
        node = out
        *heads, last = path.split(".")
        for h in heads:
            node = node.setdefault(h, {})
        node[last] = value
    return out


def _parse(data: Any, msg: Message, where: str) -> None:
    try:
        json_format.ParseDict(data, msg)
    except RecursionError:
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid {where}",
                        violations=[(where, "nested too deeply")]) from None
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid {where}",
                        violations=[(where, _short(str(exc)))]) from None


def parse_message(cls: type, data: Any, where: str) -> Message:
    """A request message from parsed JSON (an upload's line); HttpError naming `where` if it is not one."""
    msg = cls()
    _parse(data, msg, where)
    return msg


def _short(text: str) -> str:
    return text.splitlines()[0][:300] if text else "invalid"


# JSON nesting a request may have. A service decodes what the gateway sends with protobuf's
# recursion limit (100 message levels), and one JSON level can cost three (a Struct's object:
# the Struct, its map entry, the Value): deeper JSON would pass here and fail there.
MAX_JSON_DEPTH = 32


def too_deep(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests past `limit` (objects and arrays; a walk over containers only)."""
    stack = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json_body(body: bytes) -> Any:
    try:
        data = json.loads(body)
        if too_deep(data):
            raise RecursionError
        return data
    except UnicodeDecodeError:
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "the body is not UTF-8",
                        violations=[("body", "not valid UTF-8")]) from None
    except ValueError:
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "the body is not JSON",
                        violations=[("body", "not a JSON document")]) from None
    except RecursionError:  # past MAX_JSON_DEPTH, or the JSON parser's own limit
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "the body is nested too deeply",
                        violations=[("body", f"nested too deeply (at most {MAX_JSON_DEPTH} levels)")]) from None


def build_request(route: Route, variables: dict[str, str], query: list[tuple[str, str]], body: bytes,
                  headers: dict[str, str]) -> Message:
    msg = route.request_cls()
    if route.body == "*" and body.strip():
        _parse(parse_json_body(body), msg, "body")
    elif route.body and body.strip():
        field = msg.DESCRIPTOR.fields_by_name[route.body]
        data = parse_json_body(body)
        holder = route.request_cls()
        _parse({field.json_name: data}, holder, route.body)
        msg.MergeFrom(holder)
    if query:
        if route.body == "*":
            raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "this method takes its fields from the body",
                            violations=[(query[0][0], "send it in the JSON body")])
        holder = route.request_cls()
        _parse(_query_dict(route, query), holder, "query")
        msg.MergeFrom(holder)
    if variables:
        _set_path_variables(msg, variables)
    _apply_headers(msg, headers)
    return msg


def _set_path_variables(msg: Message, variables: dict[str, str]) -> None:
    """String fields (ids, the usual case) directly; anything else through the JSON mapping."""
    rest = {}
    for path, value in variables.items():
        node, *names = msg, *path.split(".")
        for name in names[:-1]:
            f = node.DESCRIPTOR.fields_by_name.get(name)
            if f is None or f.type != FieldDescriptor.TYPE_MESSAGE or repeated(f):
                node = None
                break
            node = getattr(node, name)
        f = node.DESCRIPTOR.fields_by_name.get(names[-1]) if node is not None else None
        if f is not None and f.type == FieldDescriptor.TYPE_STRING and not repeated(f):
            setattr(node, names[-1], value)
        else:
            rest[path] = value
    if rest:
        holder = type(msg)()
        _parse(_nest(rest), holder, "path")
        msg.MergeFrom(holder)


def _apply_headers(msg: Message, headers: dict[str, str]) -> None:
    fields = msg.DESCRIPTOR.fields_by_name
    key = headers.get("idempotency-key")
    if key and "request_id" in fields and not msg.request_id:
        msg.request_id = key
    match = headers.get("if-match")
    if match and match.strip() != "*":
        etag = unquote_etag(match)
        if "etag" in fields:
            msg.etag = etag
        else:
            for f in msg.DESCRIPTOR.fields:
                if f.type == FieldDescriptor.TYPE_MESSAGE and not repeated(f) \
                        and "etag" in f.message_type.fields_by_name:
                    getattr(msg, f.name).etag = etag
                    break


def unquote_etag(value: str) -> str:
    """If-Match's (first) entity-tag, as the services write etags: `W/"3"` stays `W/"3"`."""
    return value.split(",")[0].strip()


def header_etag(etag: str) -> str:
    """An etag as an ETag header: the services' etags are entity-tags already (`W/"3"`)."""
    return etag if etag.startswith(('W/"', '"')) else f'"{etag}"'


def response_etag(route: Route, msg: Message) -> str:
    node: Any = msg
    for name in route.etag_path:
        if node.DESCRIPTOR.fields_by_name[name].type == FieldDescriptor.TYPE_MESSAGE and not node.HasField(name):
            return ""
        node = getattr(node, name)
    return node if isinstance(node, str) else ""


def to_json(msg: Message) -> dict:
    return json_format.MessageToDict(msg)
