"""bench list_donors: latency of filtered, paged ListDonors over the imported million donors.

Sequential calls (one client, one call at a time): for each filter in turn (a journey stage
or a tag, common to rare), the first page of 50 and then PAGES_DEEP more pages following
next_page_token; the figure is the p99 of every call's latency in ms.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import grpc
from givance.crm.v1 import donor_service_pb2 as pb
from givance.crm.v1 import donor_service_pb2_grpc

from bench.lag import percentile

CALLS = 2000
PAGE_SIZE = 50
PAGES_DEEP = 5
FILTERS = [
    {"journey_stage": "prospect"}, {"journey_stage": "cultivation"}, {"journey_stage": "major_donor"},
    {"tag": "newsletter"}, {"tag": "volunteer"}, {"tag": "board"},
    {"journey_stage": "solicitation", "order_by": "last_name"}, {"tag": "gala-2025", "order_by": "create_time"},
]


@dataclass
class Figures:
    p50: float
    p99: float
    calls: int
    pages: int
    empty: int


async def measure(crm_address: str, metadata, calls: int = CALLS) -> Figures:
    latencies: list[float] = []
    empty = 0
    async with grpc.aio.insecure_channel(crm_address) as channel:
        stub = donor_service_pb2_grpc.DonorServiceStub(channel)
        for _ in range(3):  # warm up: connections, statements, caches
            await stub.ListDonors(pb.ListDonorsRequest(page_size=PAGE_SIZE, **FILTERS[0]), metadata=metadata)
        for filters in itertools.cycle(FILTERS):
            token = ""
            for _ in range(PAGES_DEEP + 1):
                t0 = time.perf_counter()
                resp = await stub.ListDonors(pb.ListDonorsRequest(page_size=PAGE_SIZE, page_token=token, **filters),
                                             metadata=metadata)
                latencies.append((time.perf_counter() - t0) * 1000)
                empty += not resp.donors
                token = resp.next_page_token
                if not token or len(latencies) >= calls:
                    break
            if len(latencies) >= calls:
                break
    return Figures(p50=percentile(latencies, 50), p99=percentile(latencies, 99), calls=len(latencies),
                   pages=len(latencies), empty=empty)
