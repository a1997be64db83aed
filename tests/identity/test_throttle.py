"""Login throttling under concurrency, bounded argon2 concurrency, the client address behind
trusted proxies, and the rate limits on links and codes sent to users."""

import asyncio
import uuid

import grpc
import pytest
from givance.identity.v1 import account_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2 as id_pb

from services.identity import limits
from services.identity.domain import rate_limits, throttle
from tests.conftest import PASSWORD
from tests.helpers import error_reason


@pytest.fixture(autouse=True)
async def _forget_address_failures(admin_db):
    """These tests fail many sign-ins from 127.0.0.1: the address must not stay locked for the next."""
    await admin_db.execute("DELETE FROM identity.login_throttle WHERE key LIKE 'address:%'")
    yield
    await admin_db.execute("DELETE FROM identity.login_throttle WHERE key LIKE 'address:%'")


def _deps(identity_host):
    return next(r.servicer for r in identity_host.registrations
                if r.full_name == "givance.identity.v1.IdentityService").deps


async def _login(stubs, email: str, password: str):
    return await stubs.identity.Login(id_pb.LoginRequest(email=email, password=password))


async def _outcomes(calls) -> list:
    """The status code of each call (OK for a success)."""
    out = []
    for result in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(result, grpc.aio.AioRpcError):
            out.append(result.code())
        elif isinstance(result, BaseException):
            raise result
        else:
            out.append(grpc.StatusCode.OK)
    return out


async def test_a_burst_of_wrong_guesses_gets_at_most_the_allowance_verified(stubs, tenant, admin_db, identity_host,
                                                                            monkeypatch):
    passwords = _deps(identity_host).passwords
    # none shed: every guess reaches the check
    monkeypatch.setattr(passwords, "slots", asyncio.Semaphore(1000), raising=False)
    user_hash = await admin_db.fetchval("SELECT password_hash FROM identity.users WHERE id = $1",
                                        uuid.UUID(tenant.user_id))
    checked: list[str] = []
    real_verify = passwords.verify

    async def counting_verify(password_hash, password):
        if password_hash == user_hash:
            checked.append(password)
        return await real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify", counting_verify)
    guesses = 100
    codes = await _outcomes([_login(stubs, tenant.email, f"guess number {i} of many") for i in range(guesses)])
    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}
    # the check and the count are one step: no more guesses reach the user's hash than the allowance
    assert 1 <= len(checked) <= throttle.ACCOUNT.max_failures
    row = await admin_db.fetchrow("SELECT failures, locked_until > now() AS locked FROM identity.login_throttle "
                                  "WHERE key = $1", throttle.account_key(tenant.email))
    assert row["failures"] == guesses and row["locked"]
    # locked: the right password is refused too
    assert (await fails_login(stubs, tenant.email, PASSWORD)) == grpc.StatusCode.UNAUTHENTICATED


async def fails_login(stubs, email, password) -> grpc.StatusCode:
    try:
        await _login(stubs, email, password)
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def test_a_right_password_gives_the_address_its_attempt_back(stubs, tenant, admin_db):
    for _ in range(3):
        assert (await _login(stubs, tenant.email, PASSWORD)).tokens.access_token
    assert await admin_db.fetchval(
        "SELECT COALESCE(max(failures), 0) FROM identity.login_throttle WHERE key = 'address:127.0.0.1'") == 0


# -- bounded password hashing -------------------------------------------------------------------


async def test_a_login_flood_is_shed_with_resource_exhausted_not_internal(stubs, tenant, identity_host, monkeypatch):
    passwords = _deps(identity_host).passwords
    monkeypatch.setattr(passwords, "slots", asyncio.Semaphore(1))
    monkeypatch.setattr(passwords, "queue_timeout", 0.001)
    emails = [f"flood-{i}-{uuid.uuid4().hex[:6]}@example.org" for i in range(30)]
    codes = await _outcomes([_login(stubs, e, "some password here") for e in emails])
    assert grpc.StatusCode.INTERNAL not in codes and grpc.StatusCode.UNKNOWN not in codes
    assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    # with the one slot held, every sign-in is shed at once, with a retry hint
    await passwords.slots.acquire()
    try:
        err = await _fails(_login(stubs, tenant.email, PASSWORD))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_reason(err) == "PASSWORD_HASHING_BUSY"
    finally:
        passwords.slots.release()
    assert (await _login(stubs, tenant.email, PASSWORD)).tokens.access_token


async def _fails(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


def test_hashing_slots_follow_the_cgroup_limits_not_the_hosts_cores(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs
    (v2 / "memory.max").write_text(str(4 << 30))
    assert limits.cpu_quota(v2) == 1.5
    assert limits.cpus(v2) == min(2, limits.cpus(tmp_path))
    assert limits.hashing_slots(19 * 1024, root=v2) == min(2, limits.cpus(tmp_path))
    # memory bounds it too: 64 MiB, half of it for hashes of 19 MiB each -> 1
    (v2 / "memory.max").write_text(str(64 << 20))
    assert limits.hashing_slots(19 * 1024, root=v2) == 1
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "memory.max").write_text("max\n")
    assert limits.cpu_quota(v2) is None and limits.memory_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert limits.cpus(v1) == 1


# -- rate limits on links and codes -------------------------------------------------------------


@pytest.fixture
async def _no_limits(admin_db):
    await admin_db.execute("DELETE FROM identity.request_limits")
    yield
    await admin_db.execute("DELETE FROM identity.request_limits")


def _retry_seconds(err: grpc.aio.AioRpcError) -> float:
    from google.rpc import error_details_pb2, status_pb2

    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return info.retry_delay.ToTimedelta().total_seconds()
    return 0.0


async def test_password_reset_requests_are_rate_limited_alike_for_known_and_unknown_emails(stubs, tenant, admin_db,
                                                                                           _no_limits):
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@example.org"
    for email in (tenant.email, ghost):
        for _ in range(rate_limits.PASSWORD_RESET.per_target):
            await stubs.accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(email=email))
        err = await _fails(stubs.accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(email=email.upper())))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(err) == "RATE_LIMITED"
        assert 0 < _retry_seconds(err) <= 3600
    sent = await admin_db.fetchval("SELECT count(*) FROM identity.outbox WHERE routing_key = "
                                   "'identity.user.password_reset_requested' AND aggregate_id = $1", tenant.user_id)
    assert sent == rate_limits.PASSWORD_RESET.per_target
    # one address asking for many emails is limited too (email bombing from one place)
    await admin_db.execute("DELETE FROM identity.request_limits")
    codes = await _outcomes([stubs.accounts.RequestPasswordReset(pb.RequestPasswordResetRequest(
        email=f"spray-{i}-{uuid.uuid4().hex[:6]}@example.org")) for i in range(rate_limits.PASSWORD_RESET.per_address
                                                                            + 3)])
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 3
    # the table holds no email address
    keys = await admin_db.fetchval("SELECT string_agg(key, '|') FROM identity.request_limits")
    assert ghost not in keys and tenant.email not in keys


async def test_email_verification_and_phone_codes_are_rate_limited(stubs, tenant, _no_limits):
    for _ in range(rate_limits.EMAIL_VERIFICATION.per_target):
        await stubs.accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(), metadata=tenant.md)
    err = await _fails(stubs.accounts.RequestEmailVerification(pb.RequestEmailVerificationRequest(),
                                                               metadata=tenant.md))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(err) == "RATE_LIMITED"
    phone = "+1 650-253-0002"
    for _ in range(rate_limits.PHONE_CODE.per_target):
        await stubs.accounts.RequestPhoneVerification(pb.RequestPhoneVerificationRequest(phone=phone),
                                                      metadata=tenant.md)
    err = await _fails(stubs.accounts.RequestPhoneVerification(pb.RequestPhoneVerificationRequest(phone=phone),
                                                               metadata=tenant.md))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and _retry_seconds(err) > 0
    # SMS pumping: one account cycling through numbers stops at its own limit
    codes = await _outcomes([stubs.accounts.RequestPhoneVerification(pb.RequestPhoneVerificationRequest(
        phone=f"+1 650-253-01{i:02d}"), metadata=tenant.md) for i in range(rate_limits.PHONE_CODE_PER_ACCOUNT)])
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
