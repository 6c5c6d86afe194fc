"""Two "hosts" on one machine: Linux network namespaces joined by a veth pair.

:class:`HostPair` creates two fresh namespaces with unique names, each with its own
loopback up, and one veth pair between them on a random ``10.213.X.0/24`` (the
addresses exist only inside those namespaces, so concurrent runs never clash).
:meth:`HostPair.cut` brings one end of the veth down (a partition: packets vanish,
nobody sees a reset), :meth:`HostPair.heal` brings it up again. Closing the pair
deletes both namespaces, which destroys the veth with them.

Programs run on a host with :meth:`Host.argv` (``ip netns exec`` execs the command,
so a ``Popen`` pid is the program's own). Python code runs on a host with
:func:`run_in_netns`: a dedicated thread ``setns(2)``-es into the namespace (the
namespace of a thread, not of the process) and everything that thread creates,
sockets of an asyncio loop included, lives there.

Creating namespaces needs root and ``ip``; when that fails :class:`NetnsUnavailable`
carries the exact error so a test can skip with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, no ``ip``, EPERM...)."""


class NetnsError(RuntimeError):
    """An ``ip`` command on namespaces this test created failed."""


def _ip_binary() -> str:
    found = shutil.which("ip")
    if found is None:
        raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
    return found


def ip(*args: str, timeout: float = 10.0) -> str:
    """Run ``ip ARGS``; its stdout, or :class:`NetnsError` with its stderr."""
    argv = [_ip_binary(), *args]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{' '.join(argv)}: no answer in {timeout}s") from exc
    if out.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {out.returncode}: {out.stderr.strip()}")
    return out.stdout


@dataclass(frozen=True)
class Host:
    """One end of the pair: a namespace, its veth end and that end's address."""

    netns: str
    veth: str
    address: str

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside this host's namespace."""
        return [_ip_binary(), "netns", "exec", self.netns, *command]

    def link_flags(self) -> set[str]:
        """The flags of this host's veth end (``UP``, ``LOWER_UP``...)."""
        out = ip("-n", self.netns, "-o", "link", "show", "dev", self.veth)
        start, end = out.index("<"), out.index(">")
        return set(out[start + 1:end].split(","))


class HostPair:
    """Two namespaces joined by a veth pair; a context manager that deletes them."""

    def __init__(self, prefix: str = "bbp") -> None:
        tag = secrets.token_hex(4)
        subnet = 1 + secrets.randbelow(254)
        base = f"10.213.{subnet}"
        # Interface names are at most 15 characters.
        self.a = Host(f"{prefix}-a-{tag}", f"{prefix}a{tag}"[:15], f"{base}.1")
        self.b = Host(f"{prefix}-b-{tag}", f"{prefix}b{tag}"[:15], f"{base}.2")
        self._created: list[str] = []

    def create(self) -> HostPair:
        """Make both namespaces and the veth; :class:`NetnsUnavailable` if impossible."""
        try:
            for host in (self.a, self.b):
                ip("netns", "add", host.netns)
                self._created.append(host.netns)
            # Both ends are created directly inside the namespaces: nothing ever
            # appears in the namespace the tests run in.
            ip("link", "add", self.a.veth, "netns", self.a.netns, "type", "veth",
               "peer", "name", self.b.veth, "netns", self.b.netns)
            for host in (self.a, self.b):
                ip("-n", host.netns, "link", "set", "dev", "lo", "up")
                ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", host.veth)
                ip("-n", host.netns, "link", "set", "dev", host.veth, "up")
            self.wait_carrier()
        except (NetnsError, OSError) as exc:
            self.close()
            raise NetnsUnavailable(str(exc)) from exc
        except BaseException:
            self.close()
            raise
        return self

    def wait_carrier(self, timeout: float = 5.0) -> None:
        """Wait until both veth ends are up with carrier."""
        deadline = time.monotonic() + timeout
        while True:
            if all("LOWER_UP" in h.link_flags() for h in (self.a, self.b)):
                return
            if time.monotonic() > deadline:
                raise NetnsError(f"veth {self.a.veth}/{self.b.veth} has no carrier after {timeout}s")
            time.sleep(0.02)

    def cut(self, host: Host) -> None:
        """Partition: bring ``host``'s veth end down (in-flight and new packets are lost)."""
        ip("-n", host.netns, "link", "set", "dev", host.veth, "down")

    def heal(self, host: Host) -> None:
        """Bring ``host``'s veth end up again and wait for the carrier."""
        ip("-n", host.netns, "link", "set", "dev", host.veth, "up")
        self.wait_carrier()

    def close(self) -> None:
        """Delete the namespaces this pair created (the veth goes with them)."""
        while self._created:
            name = self._created.pop()
            with contextlib.suppress(NetnsError, NetnsUnavailable):
                ip("netns", "delete", name)

    def __enter__(self) -> HostPair:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- running Python code inside a namespace ------------------------------------------


def _setns(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_netns(netns: str, fn: Callable[..., T], *args: Any, timeout: float) -> T:
    """``fn(*args)`` in a new thread that lives in namespace ``netns``; its result or
    its exception. ``TimeoutError`` if it has not finished after ``timeout`` seconds
    (the thread is a daemon and owns only what ``fn`` made)."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            _setns(netns)
            result.append(fn(*args))
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=body, name=f"netns {netns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"code in namespace {netns} still running after {timeout}s")
    if error:
        raise error[0]
    return result[0]


def wait_listening(netns: str, host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on ``host:port`` inside ``netns``."""

    def poll() -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((host, port), 0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nothing listens on {host}:{port} in {netns}") from None
                time.sleep(0.02)

    run_in_netns(netns, poll, timeout=timeout + 5)


class NetnsEpmd:
    """The real ``epmd`` of a host: inside its namespace, on its address and loopback,
    on ``port``; stopped by pid."""

    def __init__(self, host: Host, port: int, epmd: str | os.PathLike[str] = "epmd",
                 env: dict[str, str] | None = None) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            host.argv([str(epmd), "-port", str(port), "-address", f"{host.address},127.0.0.1"]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            wait_listening(host.netns, host.address, port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> NetnsEpmd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
