from alembic import context

from chassis.migrate import run_env

run_env(context)
