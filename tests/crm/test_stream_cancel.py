"""A client that walks away from a server stream leaves the server clean (issue 9, item 15).

Under `make run`, cancelled and abandoned streams made the server log `ValueError: <Token ...>
was created in a different Context` from the request-context reset in the interceptor's
stream wrapper: an async generator can be finalised from another task. The server-errors
plugin (tests/server_errors.py) fails this test if any such error is logged."""

from __future__ import annotations

import gc

import grpc
import pytest
from givance.crm.v1 import donor_service_pb2 as pb

from tests.helpers import eventually, new_donor


@pytest.mark.parametrize("how", ["cancel", "abandon"])
async def test_leaving_an_export_midway_logs_no_error(stubs, tenant, how, admin_db):
    for i in range(30):
        await stubs.donors.CreateDonor(new_donor(first_name=f"D{i}"), metadata=tenant.md)
    for _ in range(5):
        call = stubs.donors.ExportDonors(pb.ExportDonorsRequest(chunk_size=1), metadata=tenant.md)
        first = await call.read()
        assert first is not grpc.aio.EOF
        if how == "cancel":
            call.cancel()
        del call
        gc.collect()
    # The server is still healthy and the next call answers.
    listed = await stubs.donors.ListDonors(pb.ListDonorsRequest(page_size=1), metadata=tenant.md)
    assert len(listed.donors) == 1
    # Each export read in a transaction of its own; none is left open by a client that went away.
    await eventually(lambda: admin_db.fetchval(
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'givance_crm' AND datname = current_database() "
        "AND state = 'idle in transaction'"), what="the abandoned exports' transactions to end")
