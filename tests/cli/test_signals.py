"""StopSignals / SignalFlag: what the CLI's long-running commands wait on until SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from cogment_gym.cli.common import SignalFlag, StopSignals


def test_a_flag_waits_until_set_or_timeout() -> None:
    flag = SignalFlag()
    try:
        started = time.monotonic()
        assert flag.wait(0.05) is False and not flag.is_set()
        assert time.monotonic() - started >= 0.05
        setter = threading.Timer(0.05, flag.set)
        setter.start()
        assert flag.wait(10) is True and flag.is_set()
        setter.join()
        assert flag.wait(0) is True  # stays set
    finally:
        flag.close()
    assert flag.wait(0) is True  # closed: answers from the flag alone


def test_sigterm_sets_the_flag_while_waiting_and_a_second_one_interrupts() -> None:
    with StopSignals() as stop:
        killer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
        killer.start()
        started = time.monotonic()
        assert stop.event.wait(10) is True
        assert time.monotonic() - started < 5
        killer.join()
        with pytest.raises(KeyboardInterrupt):  # asked twice: stop now
            os.kill(os.getpid(), signal.SIGTERM)
            stop.event.wait(10)  # the handler runs at the latest here
    assert signal.getsignal(signal.SIGTERM) is not stop._handle  # the old handler is back


def test_the_handler_takes_no_lock_so_it_cannot_deadlock_the_waiting_thread() -> None:
    """A handler runs in the main thread between two bytecodes, maybe inside the wait itself:
    signals delivered while the main thread waits, many times at random moments, never hang it
    (threading.Event.set() in a handler could: the wait may hold the event's lock)."""
    for i in range(200):
        with StopSignals() as stop:
            killer = threading.Timer(0.0005 * (i % 7), os.kill, (os.getpid(), signal.SIGINT))
            killer.start()
            assert stop.event.wait(10) is True, f"round {i}: the wait did not wake"
            killer.join()
