%% Unit tests of the BEAM side that need no Python node (rebar3 eunit).
%% The interop tests that start Python nodes run from pytest on OTP 25 and 28
%% (tests/interop/test_erl_app.py), with beam_bridge_interop_tests.
-module(beam_bridge_tests).
-include_lib("eunit/include/eunit.hrl").

child_spec_defaults_test() ->
    Spec = beam_bridge:child_spec(#{node => 'py@127.0.0.1', actor => counter}),
    ?assertMatch(#{id := counter, restart := permanent, shutdown := 5000, type := worker,
                   start := {beam_bridge, start_link, ['py@127.0.0.1', counter, [], #{timeout := 5000}]}},
                 Spec),
    ?assertEqual(ok, supervisor:check_childspecs([Spec])).

child_spec_options_test() ->
    Spec = beam_bridge:child_spec(#{node => 'py@h', actor => a, args => [1], id => x,
                                    restart => transient, shutdown => brutal_kill}),
    ?assertMatch(#{id := x, restart := transient, shutdown := brutal_kill}, Spec),
    ?assertEqual(ok, supervisor:check_childspecs([Spec])).

elixir_child_spec_from_keywords_test() ->
    Spec = 'Elixir.PyChild':child_spec([{node, 'py@h'}, {actor, counter}, {args, [0]}]),
    ?assertMatch(#{id := counter, start := {beam_bridge, start_link, ['py@h', counter, [0], _]}}, Spec).

child_spec_requires_node_and_actor_test() ->
    ?assertError(function_clause, beam_bridge:child_spec(#{actor => a})),
    ?assertError(function_clause, beam_bridge:child_spec(#{node => 'py@h'})).

node_child_spec_test() ->
    Spec = beam_bridge_node:child_spec(#{name => 'py@127.0.0.1', stop_timeout => 2000}),
    ?assertMatch(#{id := {python_node, 'py@127.0.0.1'}, shutdown := 3000,
                   start := {beam_bridge_node, start_link, [_]}}, Spec),
    ?assertEqual(ok, supervisor:check_childspecs([Spec])).

start_without_distribution_test() ->
    %% Not distributed here: the spawn request cannot reach the node.
    ?assertEqual({error, noconnection},
                 beam_bridge:start('py_nowhere@127.0.0.1', counter, [], #{timeout => 2000})).

start_link_without_distribution_leaves_nothing_test() ->
    %% The proxy and its guard exit when the start fails; nothing stays linked to us.
    {links, Before} = process_info(self(), links),
    ?assertEqual({error, noconnection},
                 beam_bridge:start_link('py_nowhere@127.0.0.1', counter, [], #{timeout => 2000,
                                                                                connect_wait => 0})),
    {links, After} = process_info(self(), links),
    ?assertEqual(lists:sort(Before), lists:sort(After)).

actor_of_a_plain_local_process_is_an_error_test() ->
    ?assertError({not_a_proxy, _}, beam_bridge:actor(self())),
    Dead = spawn(fun() -> ok end),
    Ref = monitor(process, Dead),
    receive {'DOWN', Ref, _, _, _} -> ok end,
    ?assertExit({noproc, _}, beam_bridge:actor(Dead)).

child_spec_passes_start_options_test() ->
    Spec = beam_bridge:child_spec(#{node => 'py@h', actor => a, proxy => false, connect_wait => 50}),
    ?assertMatch(#{start := {beam_bridge, start_link, ['py@h', a, [], #{proxy := false, connect_wait := 50,
                                                                        timeout := 5000}]}}, Spec).
