"""A service that stops on its own with status 0, unasked (tools.runall's tests)."""
