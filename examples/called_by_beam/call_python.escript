#!/usr/bin/env escript
%% Call the Python node of counter.py from Erlang:
%%   escript examples/called_by_beam/call_python.escript [py@127.0.0.1]
-mode(interpret).

main(Args) ->
    Py = list_to_atom(case Args of [N | _] -> N; [] -> "py@127.0.0.1" end),
    {ok, _} = net_kernel:start([list_to_atom("call_python_" ++ os:getpid() ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(list_to_atom(os:getenv("COOKIE", "secret"))),
    io:format("ping: ~p~n", [net_adm:ping(Py)]),
    ok = gen_server:cast({py_counter, Py}, 5),
    io:format("gen_server:call(py_counter, get): ~p~n", [gen_server:call({py_counter, Py}, get)]),
    io:format("rpc:call(pymath, add, [1, 2]): ~p~n", [rpc:call(Py, pymath, add, [1, 2])]),
    Undef = try erpc:call(Py, pymath, nope, []) catch error:{exception, Reason, _} -> Reason end,
    io:format("erpc:call(pymath, nope, []) raised: ~p~n", [Undef]),
    io:format("nodes(hidden): ~p~n", [nodes(hidden)]).
