%% @doc A Python actor as a child of an Elixir supervisor.
%%
%% The Python node allow-lists what BEAM may start (`node.allow_spawn("counter",
%% Counter)', or `ALLOW_SPAWN = {("counter", "start_link"): Counter}' in a module run by
%% `python -m bridge serve'). Then, in Elixir:
%%
%% ```
%% children = [
%%   {PyChild, node: :"py@127.0.0.1", actor: :counter, args: 0},
%%   {PyChild, id: :other, node: :"py@127.0.0.1", actor: :counter, args: 10, restart: :transient}
%% ]
%% Supervisor.start_link(children, strategy: :one_for_one)
%% '''
%%
%% `args' is given to the Python `init' as it is, as `GenServer.start_link/3' gives its
%% argument to `init/1': `args: 0' gives `init(0)', `args: [0]' gives `init([0])'.
%%
%% `start_link' returns once the actor's `init' has run. The child's pid (in
%% `Supervisor.which_children/1') is a local proxy of the Python actor (see
%% `beam_bridge_proxy'): `GenServer.call(pid, ...)' reaches the actor, and
%% `PyChild.actor(pid)' gives the actor's own pid. A crash of the actor is restarted by
%% the supervisor according to `restart'; `shutdown' (milliseconds or `:brutal_kill')
%% gives its `terminate' the time to run; if the Python node goes away the child exits
%% with `noconnection'.
%%
%% Options: `node', `actor' (required), `args' (default `[]'), `id' (default the actor),
%% `restart' (default `:permanent'), `shutdown' (default 5000), `timeout' (start
%% timeout in milliseconds, default 5000). `BeamBridge' offers the same child spec next
%% to calls and rpc; `beam_bridge:child_spec/1' is the Erlang form.
-module('Elixir.PyChild').

-export([child_spec/1, start_link/1, actor/1]).

%% @doc The child spec for `{PyChild, Opts}'; `Opts' is a keyword list or a map.
-spec child_spec([{atom(), term()}] | map()) -> supervisor:child_spec().
child_spec(Opts) when is_list(Opts) ->
    child_spec(maps:from_list(Opts));
child_spec(Opts) when is_map(Opts) ->
    beam_bridge:child_spec(Opts).

%% @doc `PyChild.start_link(node: ..., actor: ..., args: ...)': start the actor linked to
%% the caller; `{ok, Pid}' after its `init', `ignore', or `{error, Reason}'.
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
