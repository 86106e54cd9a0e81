"""Run the project's programs from tests as real processes. Every run has a timeout, and one that hangs fails
with every thread's Python stack (faulthandler on SIGABRT) instead of stalling the session. No rclpy here, so
the tests of the ROS-free programs (training, bench, bag files) use it too."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest


def run_python(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """`python <args>` to its exit, where args start with `-m module`, `-c code` or a script's path. `check`: fail
    the test, with the program's stderr, when it exits non-zero. The timeout catches hangs, it is no speed goal."""
    process = subprocess.Popen([sys.executable, "-X", "faulthandler", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a process stuck in native code may not even dump its stacks
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(args)[:300]} did not exit in {timeout:.0f} s; its threads:\n{stderr[-6000:]}")
    if check and process.returncode != 0:
        pytest.fail(f"{' '.join(args)[:300]} exited {process.returncode}:\n{stderr[-6000:]}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def run_module(module: str, *args: str, timeout: float = 300, env: dict[str, str] | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """`python -m module args` to its exit (see run_python)."""
    return run_python("-m", module, *args, timeout=timeout, env=env, check=check)
