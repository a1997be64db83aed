"""crm's settings (prefix CRM_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from chassis.settings import ServiceSettings

# Development only: published keys seal nothing secret. Deployments set CRM_ENCRYPTION_KEYS
# (kid:base64 32-byte key, comma-separated, first one seals) and CRM_LINK_SIGNING_KEY.
DEV_ENCRYPTION_KEYS = "crmdev1:Y3JtLWRldi1vbmx5LWNybS1kZXYtb25seS1jcm0tZGU="
DEV_LINK_SIGNING_KEY = "crm-dev-only-link-signing-key"
# A published development key: anyone can open what it seals. crm warns at start while it is in use.
DEV_WORKFLOW_SECRET_KEYS = "wfdev1:R2l2YW5jZSB3b3JrZmxvdyBkZXYga2V5IC0gMzJiISE="


class CrmSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    port: int = 50052
    # Sealing clients' tax ids at rest (chassis.crypto).
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    # Documents: where their bytes go. "local" (a directory, the development default) or "s3"
    # (any S3-compatible storage: CRM_S3_ENDPOINT_URL, bucket, region, credentials).
    object_store: str = "local"
    object_store_dir: str = ".data/crm-documents"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "givance-documents"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # The largest document (bytes) an upload may stream; a bigger one is INVALID_ARGUMENT.
    max_document_bytes: int = 100 * 1024 * 1024
    # Signed download links (HMAC-SHA256) and how long one may live at most.
    link_signing_key: str = DEV_LINK_SIGNING_KEY
    max_link_seconds: int = 30 * 24 * 3600
    # crm's public HTTP (signed download links, signing by a contact): address and port. Unset:
    # 8083 beside the standard gRPC port 50052, an ephemeral one beside any other; -1 turns it off.
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    # The public base URL of those links (the Ingress' address in a deployment). Unset: the
    # HTTP host's own address.
    public_url: str | None = None

    def resolved_http_port(self) -> int:
        if self.http_port is not None:
            return self.http_port
        return 8083 if self.port == 50052 else 0

    def public_http_ports(self) -> set[int]:
        port = self.resolved_http_port()
        return {port} if port > 0 else set()

    # The keys workflow webhook secrets are sealed with (`kid:base64key,...`, the first one seals;
    # chassis.crypto). The default is a published development key: set your own in production.
    workflow_secret_keys: str = DEV_WORKFLOW_SECRET_KEYS
    # The workflow worker (due steps, waits, schedules) runs beside the server unless turned off.
    workflow_worker: bool = True
    workflow_poll_seconds: float = 1.0
    # Due steps run at once by one crm process (each holds a pooled connection while it runs).
    workflow_concurrency: int = 8
    # comms' address for workflow messages (MessageService.SendMessage, with crm's tenant token:
    # chassis.tenant_tokens); empty: the development messenger, which records each message in
    # the execution's log and sends nothing.
    comms_address: str = ""
    # What crm's service principal must be granted (CRM_PRINCIPAL_CLIENT_ID and _SECRET): its
    # workflows send messages through comms, which reads the donor's address from crm with the
    # token it was called with.
    principal_permissions: ClassVar[tuple[str, ...]] = ("comms.messages.send", "crm.donors.read")
