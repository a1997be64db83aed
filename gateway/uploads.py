"""Client-streamed uploads: the request body, read as it arrives, as the call's request messages.

- `application/x-ndjson` (also `application/jsonl`, `application/json`): one request message
  per line, proto3 JSON; a line is at most `max_line_bytes` (1 MiB).
- `multipart/form-data`: the one file part (named after the request's bytes field, `file`, or
  carrying a filename) goes, in chunks, into the request's bytes field (ImportDonors' `csv_chunk`).
- anything else (`text/csv`): the raw bytes, in chunks, into that bytes field.

Whatever is malformed (a line that is not JSON or not the message, invalid UTF-8, nesting past
the JSON parsers' depth, a line over its limit, a broken or truncated multipart body, a body cut
short) raises HttpError naming it: `line 3`, `multipart`, ... . The Upload wrapper keeps that
error, cancels the call (so the service sees a cancelled stream, never a short one that looks
complete) and the gateway answers with it (400, or 413 for sizes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.descriptor import FieldDescriptor
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gateway.routes import Route
from gateway.transcode import HttpError, parse_json_body, parse_message

CHUNK = 256 << 10  # bytes per message of a raw-bytes upload
JSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json")


class Upload:
    """The messages of one upload, for grpc; a malformed body ends them, kept as `error`, after
    cancelling `call`."""

    def __init__(self, source: AsyncIterator) -> None:
        self.source = source
        self.error: HttpError | None = None
        self.finished = False  # the body was read to its end (or failed)
        self.call = None

    async def messages(self) -> AsyncIterator:
        try:
            async for msg in self.source:
                yield msg
        except HttpError as err:
            self._fail(err)
        except ClientDisconnect:
            self._fail(HttpError(grpc.StatusCode.INVALID_ARGUMENT, "the upload ended before its end",
                                 violations=[("body", "the connection closed before the body was complete")]))
        finally:
            self.finished = True

    def _fail(self, err: HttpError) -> None:
        self.error = err
        if self.call is not None:
            self.call.cancel()


def _too_big(limit: int) -> HttpError:
    return HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"upload over {limit} bytes", http_status=413,
                     violations=[("body", f"at most {limit} bytes")])


async def messages(request: Request, route: Route, *, max_upload_bytes: int, max_line_bytes: int) -> AsyncIterator:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    ctype = ctype.decode("latin-1").lower()
    body = _bounded(request, max_upload_bytes)
    if ctype in JSON_TYPES:
        async for msg in _ndjson(body, route, max_line_bytes):
            yield msg
        return
    field = next((f for f in route.request_cls.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_BYTES), None)
    if field is None:
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "send application/x-ndjson",
                        violations=[("content-type", "this method takes application/x-ndjson")])
    pieces = _multipart(body, params.get(b"boundary", b""), field.name) if ctype == "multipart/form-data" else body
    async for piece in _rechunk(pieces):
        yield route.request_cls(**{field.name: piece})


async def _bounded(request: Request, limit: int) -> AsyncIterator[bytes]:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise _too_big(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_big(limit)
        if chunk:
            yield chunk


async def _ndjson(body: AsyncIterator[bytes], route: Route, max_line: int) -> AsyncIterator:
    pending = bytearray()
    number = 0
    async for chunk in body:
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            line = bytes(pending[start:end])
            start = end + 1
            if len(line) > max_line:
                raise _long_line(number, max_line)
            if line.strip():
                yield _line(route, line, number)
        del pending[:start]
        if len(pending) > max_line:
            raise _long_line(number + 1, max_line)
    if bytes(pending).strip():
        yield _line(route, bytes(pending), number + 1)


def _long_line(number: int, limit: int) -> HttpError:
    return HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"line {number} of the upload is over {limit} bytes",
                     http_status=413, violations=[(f"line {number}", f"at most {limit} bytes")])


def _line(route: Route, line: bytes, number: int):
    try:
        return parse_message(route.request_cls, parse_json_body(line), "body")
    except HttpError as err:
        detail = err.violations[0][1] if err.violations else err.message
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"line {number} of the upload is invalid: {detail}",
                        violations=[(f"line {number}", detail)]) from None


async def _rechunk(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    pending = b""
    async for piece in pieces:
        pending += piece
        while len(pending) >= CHUNK:
            yield pending[:CHUNK]
            pending = pending[CHUNK:]
    if pending:
        yield pending


def _bad_multipart(description: str) -> HttpError:
    return HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"malformed multipart body: {description}",
                     violations=[("multipart", description)])


async def _multipart(body: AsyncIterator[bytes], boundary: bytes, field: str) -> AsyncIterator[bytes]:
    """The file part's bytes, as the body arrives (python-multipart's streaming parser)."""
    if not boundary or len(boundary) > 70:
        raise HttpError(grpc.StatusCode.INVALID_ARGUMENT, "multipart/form-data needs a boundary of 1 to 70 characters",
                        violations=[("content-type", "multipart/form-data; boundary=...")])
    state = {"headers": [], "name": b"", "value": b"", "file": False, "files": 0, "ended": False, "error": ""}
    out: list[bytes] = []

    def on_part_begin() -> None:
        state["headers"], state["file"] = [], False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"].append((state["name"].lower(), state["value"]))
        state["name"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition = dict(state["headers"]).get(b"content-disposition")
        if disposition is None:
            state["error"] = "a part has no Content-Disposition"
            return
        _, opts = parse_options_header(disposition)
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if name in (field, "file") or b"filename" in opts:
            state["files"] += 1
            if state["files"] > 1:
                state["error"] = "more than one file part"
            state["file"] = True
        else:
            state["error"] = f"unexpected form field {name[:100]!r} (send the file only)"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["file"]:
            out.append(data[start:end])

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, callbacks={
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_end": on_end})
    async for chunk in body:
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise _bad_multipart(str(exc).splitlines()[0][:200] if str(exc) else "invalid") from None
        if state["error"]:
            raise _bad_multipart(state["error"])
        if out:
            yield b"".join(out)
            out.clear()
    if not state["ended"]:
        raise _bad_multipart("the body ends before its closing boundary")
    if not state["files"]:
        raise _bad_multipart("no file part")
