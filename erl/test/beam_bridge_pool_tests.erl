%% Unit tests of beam_bridge_pool that need no Python node (rebar3 eunit).
%% The pool's interop tests, with Python workers on OTP 25 and 28, are
%% tests/interop/test_pool.py and tests/interop/test_pool_netns.py.
-module(beam_bridge_pool_tests).
-include_lib("eunit/include/eunit.hrl").

child_spec_defaults_test() ->
    Spec = beam_bridge_pool:child_spec(#{name => p, node => 'py@h', actor => worker}),
    ?assertMatch(#{id := p, restart := permanent, shutdown := infinity, type := supervisor,
                   start := {beam_bridge_pool, start_link, [#{name := p, actor := worker}]}},
                 Spec),
    ?assertEqual(ok, supervisor:check_childspecs([Spec])).

child_spec_id_test() ->
    Spec = beam_bridge_pool:child_spec(#{id => my_id, nodes => ['a@h', 'b@h'], actor => worker}),
    ?assertMatch(#{id := my_id, start := {beam_bridge_pool, start_link, [Opts]}}
                   when not is_map_key(id, Opts), Spec),
    ?assertMatch(#{id := beam_bridge_pool},
                 beam_bridge_pool:child_spec(#{node => 'py@h', actor => worker})).

child_spec_requires_actor_test() ->
    ?assertError(function_clause, beam_bridge_pool:child_spec(#{node => 'py@h'})).

elixir_child_spec_from_keywords_test() ->
    Spec = 'Elixir.PyPool':child_spec([{name, ex_pool}, {node, 'py@h'}, {actor, worker}, {size, 3}]),
    ?assertMatch(#{id := ex_pool, type := supervisor,
                   start := {beam_bridge_pool, start_link, [#{size := 3, node := 'py@h'}]}}, Spec).

workers_spread_over_nodes_test() ->
    {ok, {_Flags, Children}} =
        beam_bridge_pool_sup:init({self(), #{nodes => ['a@h', 'b@h'], size => 5, actor => w}}),
    ?assertEqual([{'a@h', 0}, {'b@h', 1}, {'a@h', 2}, {'b@h', 3}, {'a@h', 4}],
                 [Id || #{id := Id} <- Children]),
    ?assertEqual(ok, supervisor:check_childspecs(Children)).

%% No node can be reached from here (not distributed): the pool starts with no
%% workers, callers wait in the queue and leave it at their timeout.
pool_without_reachable_nodes_test() ->
    process_flag(trap_exit, true),
    {ok, Pool} = beam_bridge_pool:start_link(#{node => 'py_nowhere@127.0.0.1', actor => w,
                                                size => 2, retry_interval => 50}),
    ?assertEqual(#{size => 2, workers => 0, idle => 0, busy => 0, waiting => 0},
                 beam_bridge_pool:status(Pool)),
    ?assertEqual([], beam_bridge_pool:workers(Pool)),
    ?assertExit({timeout, {beam_bridge_pool, call, [Pool, req, 100]}},
                beam_bridge_pool:call(Pool, req, 100)),
    ?assertMatch(#{waiting := 0}, beam_bridge_pool:status(Pool)),
    ok = beam_bridge_pool:stop(Pool),
    ?assertNot(is_process_alive(Pool)).

call_to_a_missing_pool_exits_noproc_test() ->
    ?assertExit({noproc, {beam_bridge_pool, call, [no_pool_here, req, 100]}},
                beam_bridge_pool:call(no_pool_here, req, 100)).
