"""The `givance` command-line client (see cli.givance)."""
