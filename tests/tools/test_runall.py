"""`make run`'s runner (tools.runall): its exit status says whether the suite ran and stopped
cleanly. Each test runs the runner itself as a process, on fake services."""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVES, FAILS, EXITS = "tests.tools.fake_serves", "tests.tools.fake_fails", "tests.tools.fake_exits"


def runner(*modules: str) -> subprocess.Popen:
    # Its own process group, so a failed test can take down the runner and its children.
    return subprocess.Popen([sys.executable, "-m", "tools.runall", "--modules", *modules], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    """The runner's exit status and stderr (its children hold its stdout: EOF means all ended)."""
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, err


def wait_ready(proc: subprocess.Popen, count: int) -> None:
    """Until `count` fake services printed that they serve (their stdout is the runner's; two
    lines written at once may interleave)."""
    seen = ""
    while seen.count("fake_serves: ready") < count:
        line = proc.stdout.readline()
        assert line, f"the runner's output ended: {seen!r}"
        seen += line


def test_every_service_failing_to_start_is_a_failure():
    code, err = finish(runner(FAILS, FAILS))
    assert code == 3, err
    assert "tests.tools.fake_fails exited with status 3" in err


def test_one_service_failing_stops_the_others_and_fails():
    code, err = finish(runner(SERVES, FAILS))
    assert code == 3, err


def test_a_service_ending_on_its_own_is_a_failure_even_with_status_0():
    code, err = finish(runner(SERVES, EXITS))
    assert code == 1, err


def test_a_signal_stops_every_service_cleanly_and_exits_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = runner(SERVES, SERVES)  # twice the same module: each child is stopped
        wait_ready(proc, 2)
        proc.send_signal(sig)
        code, err = finish(proc)
        assert code == 0, (sig, err)
