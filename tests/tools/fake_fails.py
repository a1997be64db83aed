"""A service that fails to start (tools.runall's tests run it as `python -m`)."""

import sys

print("fake_fails: cannot start", flush=True)
sys.exit(3)
