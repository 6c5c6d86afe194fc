"""Child ids as Erlang spells them, and ``get_childspec`` with OTP's reply shape.

``which_children`` sends a ``str`` id to Erlang as a binary; an Erlang caller then
names the child ``<<"w1">>``, ``w1`` or ``"w1"``. The supervisor must accept every
spelling, and only for the child whose id has that text.
"""

from __future__ import annotations

from typing import Any

import pytest

from dist_proto.terms import Atom, Pid
from python_actors import (
    DynamicSupervisor,
    GenServer,
    Ok,
    Runtime,
    Supervisor,
    SupervisorError,
    call,
)
from python_actors.supervisor import id_text

OK, ERROR = Atom("ok"), Atom("error")


class Worker(GenServer):
    def init(self, args: Any) -> Any:
        return Ok(args)


def specs() -> list[dict[str, Any]]:
    return [
        {"id": "w1", "start": (Worker.start_link, (1,))},
        {"id": ("pair", 2), "start": (Worker.start_link, (2,)), "shutdown": "brutal_kill"},
        {"id": Atom("w3"), "start": (Worker.start_link, (object(),)), "restart": "transient", "shutdown": 2.5},
    ]


@pytest.mark.parametrize("spelling", ["w1", b"w1", Atom("w1"), [119, 49]])
async def test_every_erlang_spelling_of_a_str_id_names_the_child(spelling: Any) -> None:
    async with Runtime() as rt:
        sup = await Supervisor.start_link(specs(), runtime=rt)
        assert await call(sup, (Atom("terminate_child"), spelling), runtime=rt) == OK
        kids = {k.id: k.pid for k in await Supervisor.which_children(sup, runtime=rt)}
        assert kids["w1"] is None and isinstance(kids[("pair", 2)], Pid)
        res = await call(sup, (Atom("restart_child"), spelling), runtime=rt)
        assert res[0] == OK and isinstance(res[1], Pid)
        assert await call(sup, (Atom("terminate_child"), spelling), runtime=rt) == OK
        assert await call(sup, (Atom("delete_child"), spelling), runtime=rt) == OK
        assert await call(sup, (Atom("get_childspec"), spelling), runtime=rt) == (ERROR, Atom("not_found"))


async def test_atom_id_is_named_by_binary_and_other_texts_are_not_found() -> None:
    async with Runtime() as rt:
        sup = await Supervisor.start_link(specs(), runtime=rt)
        res = await call(sup, (Atom("get_childspec"), b"w3"), runtime=rt)
        assert res[0] == OK and res[1][Atom("id")] == Atom("w3")
        for missing in (b"w2", Atom("w2"), "W1", b"\xff", [1, -1], ("pair", 3), 1):
            assert await call(sup, (Atom("terminate_child"), missing), runtime=rt) == (ERROR, Atom("not_found"))
        # A tuple id matches itself only.
        assert await call(sup, (Atom("terminate_child"), ("pair", 2)), runtime=rt) == OK


async def test_get_childspec_has_otps_shape() -> None:
    async with Runtime() as rt:
        sup = await Supervisor.start_link(specs(), runtime=rt)
        ok, spec = await call(sup, (Atom("get_childspec"), b"w1"), runtime=rt)
        assert ok == OK
        assert set(spec) == {Atom(k) for k in ("id", "start", "restart", "shutdown", "type", "modules")}
        assert spec[Atom("id")] == "w1"
        assert spec[Atom("start")] == (Atom(__name__), Atom("Worker.start_link"), [1])
        assert spec[Atom("restart")] == Atom("permanent")
        assert spec[Atom("shutdown")] == 5000 and spec[Atom("type")] == Atom("worker")
        assert spec[Atom("modules")] == [Atom(__name__)]
        hard = await Supervisor.get_childspec(sup, ("pair", 2), runtime=rt)
        assert hard["shutdown"] == Atom("brutal_kill")
        third = await Supervisor.get_childspec(sup, "w3", runtime=rt)
        # An argument with no Erlang form is shown as its repr, never crashing the reply.
        assert third["shutdown"] == 2500 and third["restart"] == Atom("transient")
        assert isinstance(third["start"][2][0], bytes) and third["start"][2][0].startswith(b"<object")
        with pytest.raises(SupervisorError) as err:
            await Supervisor.get_childspec(sup, "nope", runtime=rt)
        assert err.value.reason == Atom("not_found")


async def test_dynamic_supervisor_get_childspec_by_pid() -> None:
    async with Runtime() as rt:
        sup = await DynamicSupervisor.start_link(runtime=rt)
        pid = await DynamicSupervisor.start_child(sup, {"id": "x", "start": (Worker.start_link, (5,))}, runtime=rt)
        assert isinstance(pid, Pid)
        spec = await DynamicSupervisor.get_childspec(sup, pid, runtime=rt)
        assert spec["id"] == "x" and spec["start"][2] == [5]
        assert await call(sup, (Atom("get_childspec"), b"x"), runtime=rt) == (ERROR, Atom("not_found"))
        assert await call(sup, (Atom("restart_child"), pid), runtime=rt) == (ERROR, Atom("simple_one_for_one"))
        assert await call(sup, (Atom("delete_child"), pid), runtime=rt) == (ERROR, Atom("simple_one_for_one"))


def test_id_text() -> None:
    assert id_text("w1") == id_text(b"w1") == id_text(Atom("w1")) == id_text([119, 49]) == "w1"
    assert id_text(("w1",)) is None and id_text(3) is None and id_text([]) is None and id_text(b"\xff") is None
