%% @doc Elixir-friendly pool of Python workers (see {@link beam_bridge_pool}).
%%
%% In an Elixir supervisor:
%%
%% ```
%% children = [
%%   {PyPool, name: :py_pool, nodes: [:"py1@host", :"py2@host"], actor: :worker, size: 4}
%% ]
%% Supervisor.start_link(children, strategy: :one_for_one)
%% PyPool.call(:py_pool, {:predict, input}, 2_000)
%% '''
%%
%% Options: `name', `node' or `nodes', `actor' (required), `args', `size',
%% `strategy', `timeout', `shutdown', `intensity', `period', `retry_interval', `id'
%% (see {@link beam_bridge_pool:start_link/1}).
-module('Elixir.PyPool').

-export([child_spec/1, start_link/1, call/2, call/3, checkout/2, checkin/2, status/1,
         workers/1]).

%% @doc The child spec for `{PyPool, Opts}'; `Opts' is a keyword list or a map.
-spec child_spec([{atom(), term()}] | map()) -> supervisor:child_spec().
child_spec(Opts) -> beam_bridge_pool:child_spec(to_map(Opts)).

%% @doc `PyPool.start_link(name: ..., nodes: ..., actor: ..., size: ...)'.
-spec start_link([{atom(), term()}] | map()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Opts) -> beam_bridge_pool:start_link(to_map(Opts)).

%% @doc `PyPool.call(pool, request)': {@link beam_bridge_pool:call/2}.
-spec call(beam_bridge_pool:pool(), term()) -> term().
call(Pool, Request) -> beam_bridge_pool:call(Pool, Request).

%% @doc `PyPool.call(pool, request, timeout)': {@link beam_bridge_pool:call/3}.
-spec call(beam_bridge_pool:pool(), term(), timeout()) -> term().
call(Pool, Request, Timeout) -> beam_bridge_pool:call(Pool, Request, Timeout).

%% @doc {@link beam_bridge_pool:checkout/2}.
-spec checkout(beam_bridge_pool:pool(), timeout()) -> pid().
checkout(Pool, Timeout) -> beam_bridge_pool:checkout(Pool, Timeout).

%% @doc {@link beam_bridge_pool:checkin/2}.
-spec checkin(beam_bridge_pool:pool(), pid()) -> ok.
checkin(Pool, Worker) -> beam_bridge_pool:checkin(Pool, Worker).

%% @doc {@link beam_bridge_pool:status/1}.
-spec status(beam_bridge_pool:pool()) -> #{atom() => non_neg_integer()}.
status(Pool) -> beam_bridge_pool:status(Pool).

%% @doc {@link beam_bridge_pool:workers/1}.
-spec workers(beam_bridge_pool:pool()) -> [pid()].
workers(Pool) -> beam_bridge_pool:workers(Pool).

to_map(Opts) when is_list(Opts) -> maps:from_list(Opts);
to_map(Opts) when is_map(Opts) -> Opts.
