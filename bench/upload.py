"""A 50 MB document streamed into crm (UploadDocument: 1 MiB chunks, SHA-256 while streaming,
type detection, stored in the object store, recorded in the database) against writing the same
bytes to the same store directly (LocalObjectStore.put in this process, the same chunks).

    bench upload: N MB/s ratio=R baseline=B MB/s size=50MB

ratio = upload MB/s / direct MB/s, each the best of `ROUNDS` interleaved runs with fresh bytes
(so nothing is deduplicated). The store directory is a temporary one of this run (CRM_OBJECT_STORE_DIR).

    python -m bench.upload      just this figure (starts the stack, signs up, measures, stops)
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import grpc
import uvloop
from givance.crm.v1 import document_service_pb2 as pb
from givance.crm.v1 import document_service_pb2_grpc

from services.crm.providers.object_store import LocalObjectStore

SIZE = 50 * 1024 * 1024
CHUNK = 1024 * 1024
ROUNDS = 5
MB = 1024 * 1024


@dataclass
class Figures:
    rate: float  # MB/s through crm
    baseline: float  # MB/s straight into the store


def _chunks(data: bytes):
    view = memoryview(data)
    return [bytes(view[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]


def _requests(chunks: list[bytes]) -> list[pb.UploadDocumentRequest]:
    """The stream's messages, built before the clock starts (as the direct write's chunks are):
    the figure is crm's path (the transport, the hash, the store, the database), not the bench
    building protobuf messages."""
    header = pb.UploadDocumentRequest(header=pb.DocumentUploadHeader(filename="bench.bin"))
    return [header, *(pb.UploadDocumentRequest(chunk=c) for c in chunks)]


async def _upload(stub, metadata, requests: list[pb.UploadDocumentRequest]) -> float:
    start = time.perf_counter()
    resp = await stub.UploadDocument(iter(requests), metadata=metadata)
    elapsed = time.perf_counter() - start
    assert resp.document.size_bytes == SIZE and not resp.deduplicated
    return elapsed


async def _direct(store: LocalObjectStore, chunks: list[bytes]) -> float:
    async def gen():
        for c in chunks:
            yield c

    start = time.perf_counter()
    await store.put(f"bench-direct/{uuid.uuid4().hex}", gen())
    return time.perf_counter() - start


async def measure(crm_address: str, metadata, store_dir: str, progress) -> Figures:
    store = LocalObjectStore(store_dir)
    best_upload, best_direct = float("inf"), float("inf")
    options = [("grpc.max_send_message_length", 8 * MB)]
    async with grpc.aio.insecure_channel(crm_address, options=options) as channel:
        stub = document_service_pb2_grpc.DocumentServiceStub(channel)
        for round_no in range(1, ROUNDS + 1):
            up = await _upload(stub, metadata, _requests(_chunks(os.urandom(SIZE))))
            direct = await _direct(store, _chunks(os.urandom(SIZE)))
            progress(f"upload round {round_no}: {SIZE / MB / up:.0f} MB/s through crm, {SIZE / MB / direct:.0f} MB/s "
                     "straight into the store")
            best_upload, best_direct = min(best_upload, up), min(best_direct, direct)
    return Figures(rate=SIZE / MB / best_upload, baseline=SIZE / MB / best_direct)


def report_line(f: Figures) -> str:
    return (f"bench upload: {f.rate:.0f} MB/s ratio={f.rate / f.baseline:.2f} baseline={f.baseline:.0f} MB/s "
            f"size={SIZE // MB}MB")


def store_dir() -> str:
    """The documents directory of a bench run (crm's processes and this one share it)."""
    path = os.environ.get("CRM_OBJECT_STORE_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="givance-bench-documents-")
        atexit.register(shutil.rmtree, path, True)  # the run's documents go with it
    os.environ["CRM_OBJECT_STORE_DIR"] = path
    return path


def main() -> None:
    from bench import seed
    from bench.__main__ import progress, start_servers
    from bench.stack import Processes, recreate, stack_from_env, wait_healthy

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    directory = store_dir()
    stack = stack_from_env()
    recreate(stack)
    procs = Processes()
    try:
        addrs = start_servers(procs, stack)

        async def go() -> None:
            for address in addrs.services.values():
                await wait_healthy(address, procs, timeout=120)  # a loaded machine starts slowly
            org_id, token = await seed.sign_up(addrs.identity)
            metadata = (("authorization", f"Bearer {token}"), ("x-tenant-id", org_id))
            print(report_line(await measure(addrs.crm, metadata, directory, progress)), flush=True)
            procs.check_alive()

        uvloop.run(go())
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
