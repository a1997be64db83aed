"""Development tools: start the local servers, run every service at once. Never imported by
the chassis or a service (import-linter keeps it so); not part of a deployment."""
