%% @doc Elixir-friendly child spec for a Python actor.
%%
%% In an Elixir supervisor:
%%
%% ```
%% children = [
%%   {PyChild, node: :"py@127.0.0.1", actor: :counter, args: [0]},
%%   {PyChild, id: :other, node: :"py@127.0.0.1", actor: :counter, args: [10], restart: :transient}
%% ]
%% Supervisor.start_link(children, strategy: :one_for_one)
%% '''
%%
%% The child's pid (in `Supervisor.which_children/1') is a local proxy of the Python
%% actor (see `beam_bridge_proxy'): `GenServer.call(pid, ...)' reaches the actor, and
%% `PyChild.actor(pid)' gives the actor's own pid.
%%
%% Options: `node', `actor' (required), `args', `id', `restart', `shutdown', `timeout'
%% (see {@link beam_bridge:child_spec/1}).
-module('Elixir.PyChild').

-export([child_spec/1, start_link/1, actor/1]).

%% @doc The child spec for `{PyChild, Opts}'; `Opts' is a keyword list or a map.
-spec child_spec([{atom(), term()}] | map()) -> supervisor:child_spec().
child_spec(Opts) when is_list(Opts) ->
    child_spec(maps:from_list(Opts));
child_spec(Opts) when is_map(Opts) ->
    beam_bridge:child_spec(Opts).

%% @doc `PyChild.start_link(node: ..., actor: ..., args: ...)'.
-spec start_link([{atom(), term()}] | map()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Opts) when is_list(Opts) ->
    start_link(maps:from_list(Opts));
start_link(#{node := Node, actor := Actor} = Opts) ->
    beam_bridge:start_link(Node, Actor, maps:get(args, Opts, []),
                           maps:with([timeout, connect_wait, proxy], Opts)).

%% @doc `PyChild.actor(pid)': the Python actor behind a child's pid.
-spec actor(pid()) -> pid().
actor(Pid) ->
    beam_bridge:actor(Pid).
