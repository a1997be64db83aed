"""A service that serves until SIGTERM or SIGINT, then stops cleanly (tools.runall's tests)."""

import signal
import sys

STOP = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, STOP)  # held until sigwait takes one: none is missed
print("fake_serves: ready", flush=True)
signal.sigwait(STOP)
sys.exit(0)
