"""Run several services as child processes until SIGTERM or Ctrl-C.

    python -m chassis.runall identity crm

Each child is `python -m services.<name>`; a signal is forwarded so every service shuts
down gracefully. If one child exits, the others are stopped too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def main(names: list[str]) -> int:
    procs = [subprocess.Popen([sys.executable, "-m", f"services.{n}"]) for n in names]
    stopping = False

    def forward(signum, _frame):
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.3)
    finally:
        forward(signal.SIGTERM, None)
        for p in procs:
            p.wait(timeout=30)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
