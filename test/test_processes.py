"""The tests' process runner (test/helpers/processes.py): a hung program fails the test with its stacks."""

import pytest
from processes import run_module, run_python

HANG = """import time

def wait_for_a_reply_that_never_comes():
    time.sleep(120)

wait_for_a_reply_that_never_comes()
"""


def test_a_hung_program_fails_with_the_function_it_hung_in():
    with pytest.raises(pytest.fail.Exception) as failure:
        run_python("-c", HANG, timeout=3)
    message = str(failure.value)
    assert "did not exit in 3 s" in message
    assert "wait_for_a_reply_that_never_comes" in message  # faulthandler's stack of the main thread


def test_check_fails_with_the_programs_stderr_and_exit_code():
    with pytest.raises(pytest.fail.Exception, match=r"exited 3:\nbroken on purpose"):
        run_python("-c", "import sys; sys.stderr.write('broken on purpose'); sys.exit(3)", check=True)
    done = run_module("json.tool", "--help")
    assert done.returncode == 0 and "usage" in done.stdout
