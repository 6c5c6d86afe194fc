"""OTP's ``observer`` GUI on a Python node, under Xvfb, with screenshots.

Observer (wx) runs on a Debian OTP 25 node (the OTP 28 runtime used here has no
wx/observer), is pointed at the Python node through its Nodes menu, and visits every
tab. The test checks that no observer process crashed (each tab asks the node
something: sys_info, procs_info, fetch_stats, appmon_info, table/port/socket lists),
that the Processes tab's backend streamed the Python processes, and saves a
screenshot of the System and Processes tabs (``tmp_path``; look at them).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import Node
from python_actors import GenServer, Reply
from tests.beam import TEST_COOKIE, BeamNode, Epmd, unique_name
from tests.beam import runtime as find_runtime
from tests.interop.node_support import ev

pytestmark = pytest.mark.interop

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Probe(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(request, state)


def _free_display() -> int:
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise RuntimeError("Xvfb is missing: make test installs the xvfb package")
    n = _free_display()
    proc = subprocess.Popen(
        [xvfb, f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb :{n} did not start")
            time.sleep(0.05)
        yield f":{n}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def gui_beam(epmd: Epmd, display: str, tmp_path: Path) -> Iterator[BeamNode]:
    with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, prefix="obs", env={"DISPLAY": display}) as b:
        b.eval(f'logger:add_handler(obs_file, logger_std_h, #{{config => #{{file => "{tmp_path / "beam.log"}"}}}})')
        yield b


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('pyobs')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as n:
        yield n


def _shot(path: Path) -> str:
    return f"""(fun() ->
        DC = wxScreenDC:new(), {{W, H}} = wxDC:getSize(DC),
        Bmp = wxBitmap:new(W, H), Mem = wxMemoryDC:new(Bmp),
        wxDC:blit(Mem, {{0, 0}}, {{W, H}}, DC, {{0, 0}}),
        wxMemoryDC:destroy(Mem), wxScreenDC:destroy(DC),
        true = wxBitmap:saveFile(Bmp, "{path}", 15), wxBitmap:destroy(Bmp) end)()"""


async def test_observer_shows_python_processes(
    node: Node, gui_beam: BeamNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "bridge.introspection")
    await Probe.start(runtime=node.runtime, name="observer_probe")
    py = node.name
    sys_png, procs_png = tmp_path / "observer_system.png", tmp_path / "observer_processes.png"
    debug = """observer ! {get_debug_info, self()},
        {Env, Notebook} = receive {observer_debug, E, N, _} -> {E, N} after 5000 -> exit(no_debug_info) end,
        wx:set_env(Env),"""
    await ev(gui_beam, f"""
        pong = net_adm:ping('{py}'),
        ok = observer:start(), timer:sleep(2000),
        State = lists:nth(2, sys:get_state(observer)),
        Nodes = element(11, State),
        Idx = length(lists:takewhile(fun(N) -> N =/= '{py}' end, Nodes)) + 1,
        observer ! {{wx, 1000 + Idx, element(2, State), [], {{wxCommand, command_menu_selected, [], 0, 0}}}},
        timer:sleep(2500), ok""", timeout=60)
    await ev(gui_beam, f"{debug} {_shot(sys_png)}, ok", timeout=60)
    for tab in (1, 2, 3, 5, 6, 7, 8):  # every other tab asks the Python node something
        await ev(gui_beam, f"{debug} wxNotebook:setSelection(Notebook, {tab}), timer:sleep(1000), ok", timeout=60)
    await ev(gui_beam, f"{debug} wxNotebook:setSelection(Notebook, 4), timer:sleep(2500), {_shot(procs_png)}, ok",
             timeout=60)
    alive = await ev(gui_beam, "is_pid(whereis(observer))")
    await ev(gui_beam, "observer:stop(), ok", timeout=30)
    assert alive is True
    beam_log = (tmp_path / "beam.log").read_text() if (tmp_path / "beam.log").exists() else ""
    assert "crasher" not in beam_log and "terminating" not in beam_log, beam_log[:3000]
    for png in (sys_png, procs_png):
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, png
    asked = [r.getMessage() for r in caplog.records if r.name == "bridge.introspection"]
    assert any("procs_info" in m for m in asked), asked
    assert any("sys_info" in m for m in asked), asked
