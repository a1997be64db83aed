"""What every Givance service is built on: settings, database, auth, errors, events, telemetry, server."""
