"""identity's production argon2id parameters. The rest of the suite runs with cheap ones
(tests/conftest.py TEST_ARGON2, through IdentitySettings); this is where the real ones are held."""

import argon2
import pytest
from argon2.exceptions import VerifyMismatchError

from services.identity.__main__ import password_hasher
from services.identity.settings import IdentitySettings
from tests.conftest import PASSWORD, TEST_ARGON2


def test_default_settings_hash_with_argon2id_m19456_t2_p1_and_verify(monkeypatch):
    for name in TEST_ARGON2:
        monkeypatch.delenv(name, raising=False)
    hasher = password_hasher(IdentitySettings())
    encoded = hasher.hash(PASSWORD)
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    params = argon2.extract_parameters(encoded)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (argon2.Type.ID, 19456, 2, 1)
    assert hasher.verify(encoded, PASSWORD)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(encoded, PASSWORD + "!")
    assert not hasher.check_needs_rehash(encoded)


async def test_the_suite_runs_identity_with_the_lowered_parameters(tenant, admin_db):
    encoded = await admin_db.fetchval("SELECT password_hash FROM identity.users WHERE id = $1::uuid", tenant.user_id)
    params = argon2.extract_parameters(encoded)
    lowered = IdentitySettings()  # what the session's identity host was built with
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        lowered.argon2_time_cost, lowered.argon2_memory_kib, lowered.argon2_parallelism)
    assert params.memory_cost < 19456, "the suite should not pay production argon2 costs"
