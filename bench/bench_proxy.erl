%% BEAM-side timing loop of bench/proxy.py, compiled with erlc at bench time so that
%% no erl_eval overhead is part of any figure.
-module(bench_proxy).
-export([calls/2]).

%% N gen_server:call(Pid, get), each timed; returns {P50, P99} in nanoseconds.
calls(Pid, N) ->
    Times = lists:sort([one(Pid) || _ <- lists:seq(1, N)]),
    {lists:nth(max(1, N div 2), Times), lists:nth(max(1, (N * 99) div 100), Times)}.

one(Pid) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = gen_server:call(Pid, get),
    erlang:monotonic_time(nanosecond) - T0.
