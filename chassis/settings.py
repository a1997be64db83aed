"""Settings every service shares, read from the environment.

DATABASE_URL and RABBITMQ_URL are the suite-wide names (no prefix); everything a single
service needs lives in its own settings class with its own prefix (CRM_PORT, ...).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/givance"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # Administrative connection: migrations and role setup. Services themselves connect
    # as their own unprivileged role (see app_database_url).
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL"))
    rabbitmq_url: str = Field(DEFAULT_RABBITMQ_URL, validation_alias=AliasChoices("RABBITMQ_URL"))
    events_exchange: str = Field("givance.events", validation_alias=AliasChoices("EVENTS_EXCHANGE"))
    identity_address: str = Field("127.0.0.1:50051", validation_alias=AliasChoices("IDENTITY_ADDRESS"))
    otlp_endpoint: str | None = Field(None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"))

    host: str = "127.0.0.1"
    port: int = 0
    db_pool_size: int = 10
    # The unprivileged role this service connects as; defaults to givance_<service>.
    db_role: str = ""
    db_role_password: str | None = None
    grace_seconds: float = 10.0

    def app_database_url(self, service: str) -> str:
        """The DSN (asyncpg form) of this service's own role: owns nothing, no BYPASSRLS."""
        url = make_url(self.database_url).set(
            drivername="postgresql+asyncpg",
            username=self.db_role or f"givance_{service}",
            password=self.db_role_password,
        )
        return url.render_as_string(hide_password=False)

    def admin_database_url(self) -> str:
        return make_url(self.database_url).set(drivername="postgresql+asyncpg").render_as_string(
            hide_password=False
        )


def plain_dsn(sqlalchemy_url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
