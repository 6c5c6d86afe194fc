%% BEAM side of bench/pool.py: timed loops, compiled so erl_eval is never on the
%% timed path. Times are erlang:monotonic_time in nanoseconds.
-module(bench_pool).
-behaviour(gen_server).

-export([latency/3, throughput/4, start_echo/0, call_direct/2, call_pool/2, call_any/2]).
-export([init/1, handle_call/3, handle_cast/2]).

%% @doc `N' sequential calls of `Call(Target, Request)'; the time of each, in ns.
latency(Call, Request, N) ->
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         _ = Call(Request),
         erlang:monotonic_time(nanosecond) - T0
     end || _ <- lists:seq(1, N)].

%% @doc `Callers' processes each making `PerCaller' calls at once; total ns.
throughput(Call, Request, Callers, PerCaller) ->
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [spawn_link(fun() ->
                           [Call(Request) || _ <- lists:seq(1, PerCaller)],
                           Self ! {done, self()}
                       end) || _ <- lists:seq(1, Callers)],
    [receive {done, P} -> ok end || P <- Pids],
    erlang:monotonic_time(nanosecond) - T0.

call_direct(Server, Request) -> gen_server:call(Server, Request, 60000).
call_pool(Pool, Request) -> beam_bridge_pool:call(Pool, Request, 60000).

%% Round-robin over a fixed list of servers, without a pool (each caller its own turn).
call_any(Servers, Request) ->
    I = erlang:unique_integer([positive]) rem length(Servers),
    gen_server:call(lists:nth(I + 1, Servers), Request, 60000).

%% An Erlang echo gen_server (the BEAM reference for a worker on another node).
start_echo() ->
    {ok, Pid} = gen_server:start(?MODULE, [], []),
    Pid.

init([]) -> {ok, nostate}.
handle_call({echo, X}, _From, S) -> {reply, X, S};
handle_call({spin, N}, _From, S) -> {reply, spin(N, 0), S};
handle_call(_, _From, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.

spin(0, Acc) -> Acc;
spin(N, Acc) -> spin(N - 1, Acc + N).
