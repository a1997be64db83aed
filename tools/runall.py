"""Run several services as child processes until SIGTERM or Ctrl-C (`make run`).

    python -m tools.runall                        every service listed in pyproject.toml, then the
                                                  HTTP apps listed there (the gateway on :8080)
    python -m tools.runall identity               some of them
    python -m tools.runall --modules pkg.a pkg.b  any modules run as `python -m` (the tests' fakes)

Each child is `python -m services.<name>`; a signal is forwarded so every service shuts
down gracefully. If one child exits, the others are stopped too.

Exit status: 0 only when a signal stopped the run and every child then stopped cleanly.
A child that exits on its own (a service that failed to start, or crashed) stops the run
with that child's status (1 if it had none: it exited 0 or was killed).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

CLEAN = {0, -signal.SIGTERM, -signal.SIGINT}


def run(modules: list[str], *, grace: float = 30.0) -> int:
    procs: list[tuple[str, subprocess.Popen]] = []
    signalled = False

    def stop_all() -> None:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    def on_signal(_signum, _frame) -> None:
        nonlocal signalled
        signalled = True
        stop_all()

    # Before the first child starts: a signal from then on stops every child started.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    first: tuple[str, subprocess.Popen] | None = None
    try:
        for m in modules:
            if not signalled:
                procs.append((m, subprocess.Popen([sys.executable, "-m", m])))
        while first is None and not signalled:
            first = next(((m, p) for m, p in procs if p.poll() is not None), None)
            if first is None:
                time.sleep(0.3)
    finally:
        stop_all()
        for m, p in procs:
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"runall: {m} ignored SIGTERM for {grace:.0f}s; killing it", file=sys.stderr)
                p.kill()
                p.wait()
    if first is not None and not signalled:
        code = first[1].returncode
        print(f"runall: {first[0]} exited with status {code}; stopped the others", file=sys.stderr)
        return code if code > 0 else 1
    failed = [(m, p.returncode) for m, p in procs if p.returncode not in CLEAN]
    for m, code in failed:
        print(f"runall: {m} stopped with status {code}", file=sys.stderr)
    return next((code for _, code in failed if code > 0), 1) if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.runall", description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", help="services to run (default: every listed one)")
    parser.add_argument("--modules", nargs="+", default=None, help="run these modules instead of services")
    args = parser.parse_args(argv)
    if args.modules:
        return run(args.modules)
    import os

    from chassis.broker import dev_passwords
    from chassis.spec import listed_http, listed_services
    from chassis.tenant_tokens import dev_principals

    services = args.services or listed_services()
    dev_passwords(services, os.environ)  # the users chassis.migrate made for `make run` (children inherit)
    dev_principals(services, os.environ)  # the service principals tools.devprincipals made
    return run([f"services.{name}" for name in services] + listed_http())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
