"""The watchdog behind ``statement_deadline``: it cuts an overdue operation's socket, also
when a shorter deadline is armed after longer ones (it sleeps until the earliest)."""

from __future__ import annotations

import socket
import time

from ferroq_postgres.deadline import Watchdog


def _cut_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""  # shut down: end of stream
    except TimeoutError:
        return False


def test_a_shorter_deadline_armed_after_longer_ones_is_kept() -> None:
    dog = Watchdog()
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        long_tokens = [dog.arm(a.fileno(), 60.0) for a, _ in pairs[:2]]
        started = time.monotonic()
        short = dog.arm(pairs[2][0].fileno(), 0.2)
        assert _cut_within(pairs[2][0], 5.0)
        assert time.monotonic() - started < 3.0
        assert not dog.disarm(short), "cut off: its token is gone"
        assert all(dog.disarm(t) for t in long_tokens), "the long ones still run"
        assert not _cut_within(pairs[0][0], 0.3)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_operations_that_end_in_time_are_left_alone() -> None:
    dog = Watchdog()
    a, b = socket.socketpair()
    try:
        for _ in range(1000):
            assert dog.disarm(dog.arm(a.fileno(), 0.5))
        time.sleep(0.8)  # past every deadline armed above
        b.sendall(b"x")
        assert a.recv(1) == b"x"
    finally:
        a.close()
        b.close()
