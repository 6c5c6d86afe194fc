#!/usr/bin/env escript
%% An Erlang supervisor with a Python child (the node of actors.py):
%%   rebar3 compile
%%   escript examples/supervise/supervise.escript py@127.0.0.1 _build/default/lib/beam_bridge/ebin
-mode(interpret).

main([PyNode, Ebin]) ->
    Py = list_to_atom(PyNode),
    true = code:add_patha(Ebin),
    {ok, _} = net_kernel:start([list_to_atom("supervise_" ++ os:getpid() ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(list_to_atom(os:getenv("COOKIE", "secret"))),
    process_flag(trap_exit, true),
    Child = beam_bridge:child_spec(#{id => counter, node => Py, actor => counter, args => 10}),
    {ok, Sup} = beam_bridge_sup:start_link(#{strategy => one_for_one, intensity => 3, period => 5}, [Child]),
    Counter = counter_pid(Sup),
    io:format("child started on ~p: ~p~n", [node(Counter), Counter]),
    ok = gen_server:cast(Counter, 5),
    io:format("after cast 5, get: ~p~n", [gen_server:call(Counter, get)]),
    {'EXIT', {{python_exception, Type, _Message, _Traceback}, _}} = (catch gen_server:call(Counter, crash)),
    io:format("the Python child crashed with a ~s~n", [Type]),
    Restarted = wait_restart(Sup, Counter, 100),
    io:format("restarted as ~p, get: ~p~n", [Restarted, gen_server:call(Restarted, get)]),
    unlink(Sup),
    exit(Sup, shutdown),
    io:format("supervisor stopped~n");
main(_) ->
    io:format(standard_error, "usage: supervise.escript PY_NODE BEAM_BRIDGE_EBIN~n", []),
    halt(64).

counter_pid(Sup) ->
    [{counter, Pid, worker, _}] = supervisor:which_children(Sup),
    Pid.

wait_restart(Sup, Old, Tries) when Tries > 0 ->
    case counter_pid(Sup) of
        Pid when is_pid(Pid), Pid =/= Old -> Pid;
        _ -> timer:sleep(50), wait_restart(Sup, Old, Tries - 1)
    end.
