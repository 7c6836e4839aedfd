"""A network of its own for one worker, and a way to make it go silent.

:func:`island` makes a network namespace joined to this one by a veth pair and runs a TCP
relay in this namespace, bound to the veth's host-side address only, that forwards to the
Postgres server on loopback (whose configuration is left alone: it keeps listening on
127.0.0.1). A worker started with :meth:`Island.command` reaches the database through the
relay; :meth:`Island.drop` makes iptables rules *inside the namespace* drop every packet to
and from the host side, which is a silent partition: no RST, no ICMP, nothing to tell either
end. Everything is created and removed here (the rules go with the namespace); only loopback
and the namespace made here see traffic. Needs root, iproute2 and iptables (installed with
apt-get when missing).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["Island", "Relay", "ensure_iptables", "island", "unavailable"]

#: Per-command limit for ip and iptables (they return at once; apt may take minutes).
COMMAND_TIMEOUT = 20.0
APT_TIMEOUT = 600.0


def unavailable() -> str | None:
    """Why the namespaces cannot be made here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


def _run(*argv: str, timeout: float = COMMAND_TIMEOUT) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout}")


def ensure_iptables() -> str:
    """The iptables executable, installing Debian's package when it is missing."""
    install = ("apt-get", "install", "-y", "-q", "iptables")
    found = shutil.which("iptables")
    for steps in ((install,), (("apt-get", "update", "-q"), install)):
        if found is not None:
            break
        for step in steps:
            with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
                _run(*step, timeout=APT_TIMEOUT)
        found = shutil.which("iptables")
    if found is None:
        raise RuntimeError("iptables is not installed and apt-get could not install it")
    return found


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.200.0.0/13 that no interface uses."""
    out = subprocess.run(
        ("ip", "-o", "-4", "addr"), capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    ).stdout
    used = [
        ipaddress.ip_interface(word).network
        for line in out.splitlines()
        for word in line.split()
        if "/" in word and word[0].isdigit()
    ]
    base = int(ipaddress.IPv4Address("10.200.0.0"))
    for i in range(64):
        index = (uuid.uuid4().int + i) % (1 << 17)  # /30s inside the /13
        net = ipaddress.IPv4Network((base + 4 * index, 30))
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /30 in 10.200.0.0/13 for the veth pair")


@attrs.define
class Island:
    """A namespace whose only way out is a veth pair to a relay in this namespace."""

    #: The namespace's name (``ip netns``).
    namespace: str
    #: The host side of the veth pair: where the relay listens.
    host_ip: str
    port: int
    iptables: str
    dropping: bool = False

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace (same pid, environment and files)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def _rules(self, action: str) -> None:
        for chain, side in (("OUTPUT", "-d"), ("INPUT", "-s")):
            _run(
                "ip",
                "netns",
                "exec",
                self.namespace,
                self.iptables,
                action,
                chain,
                side,
                self.host_ip,
                "-j",
                "DROP",
            )

    def drop(self) -> None:
        """Silence: every packet between the namespace and the relay is dropped."""
        if not self.dropping:
            self._rules("-I")
            self.dropping = True

    def restore(self) -> None:
        """The network works again (connections the kernel gave up on stay dead)."""
        if self.dropping:
            self._rules("-D")
            self.dropping = False


@contextmanager
def island(target: tuple[str, int]) -> Iterator[Island]:
    """A namespace and its relay to ``target`` (host, port on loopback); removed on exit."""
    why = unavailable()
    if why is not None:
        raise RuntimeError(f"cannot isolate a worker's network: {why}")
    iptables = ensure_iptables()
    name = f"fqp{uuid.uuid4().hex[:8]}"
    host_if, ns_if = f"{name}h", f"{name}n"
    net = _free_subnet()
    host_ip, ns_ip = (str(a) for a in list(net.hosts())[:2])
    with ExitStack() as stack:
        _run("ip", "netns", "add", name)
        stack.callback(_quiet, "ip", "netns", "del", name)
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        stack.callback(_quiet, "ip", "link", "del", host_if)
        _run("ip", "link", "set", ns_if, "netns", name)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        inside = ("ip", "netns", "exec", name, "ip")
        _run(*inside, "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _run(*inside, "link", "set", ns_if, "up")
        _run(*inside, "link", "set", "lo", "up")
        relay = Relay((host_ip, 0), target)
        stack.callback(relay.stop)
        relay.start()
        yield Island(name, host_ip, relay.port, iptables)


def _quiet(*argv: str) -> None:
    with contextlib.suppress(RuntimeError, OSError, subprocess.TimeoutExpired):
        _run(*argv)


class Relay:
    """Forwards TCP connections from ``listen`` to ``target``, a thread per direction.

    Its accepted sockets have short keepalives, as a server's would: once a partition made
    the worker's kernel give up on a connection, the relay closes its side and the upstream
    one, so the server ends that session (and rolls back what it left open).
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self._server = socket.create_server(listen)
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._target = target
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            client.settimeout(None)
            _keepalive(client)
            try:
                upstream = socket.create_connection(self._target, timeout=5.0)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Copy one direction until either side ends; the sockets are closed by stop()."""
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._server.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 2)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
