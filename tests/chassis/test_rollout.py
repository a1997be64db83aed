"""chassis.rollout: the init container of each Deployment waits until the service's schema is at
the head of its migrations (issue 10, item 6: the migrations Job finishes before the rollout)."""

from chassis import rollout
from chassis.settings import ServiceSettings, plain_dsn
from chassis.spec import listed_services


async def test_a_migrated_schema_is_at_its_heads_and_a_newer_head_is_waited_for(env):
    for name in listed_services():
        dsn = plain_dsn(ServiceSettings().app_database_url(name))  # the service's own role
        heads = rollout.heads(name)
        assert heads and await rollout.applied(dsn, name) == heads
        assert await rollout.wait(dsn, name, timeout=5)
        # A version whose migrations the database has not run yet: not ready, until the timeout.
        assert not await rollout.wait(dsn, name, timeout=0, wanted={*heads, "ffffffffffff"})


async def test_an_unmigrated_schema_is_not_at_head(env):
    dsn = plain_dsn(ServiceSettings().app_database_url("crm"))
    assert await rollout.applied(dsn, "no_such_schema") == set()
