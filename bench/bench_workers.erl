%% BEAM side of bench/workers.py, compiled with erlc at bench time: the same
%% CPU-bound loop as the Python actors run, served by 1 or 2 processes on a node
%% started with +S 2 (two schedulers, one per core of the bench machine).
-module(bench_workers).
-export([main/1]).

%% main([N, K, Runs]): for each run print "one Micros" (K calls to one server,
%% one after another) and "two Micros" (K/2 calls to each of two servers, at once).
main([N0, K0, Runs0]) ->
    [N, K, Runs] = [list_to_integer(A) || A <- [N0, K0, Runs0]],
    lists:foreach(fun(_) ->
        io:format("one ~b~n", [timed(1, N, K)]),
        io:format("two ~b~n", [timed(2, N, K)])
    end, lists:seq(1, Runs)),
    halt().

burn(N) -> burn(0, N, 0).
burn(I, N, T) when I < N -> burn(I + 1, N, (T + I * I) rem 1000003);
burn(_, _, T) -> T.

server() ->
    receive
        {call, From, N} -> From ! {self(), burn(N)}, server();
        stop -> ok
    end.

client(Server, N, Calls, Parent) ->
    [begin Server ! {call, self(), N}, receive {Server, _} -> ok end end
     || _ <- lists:seq(1, Calls)],
    Parent ! {done, self()}.

timed(Servers, N, K) ->
    Pids = [spawn(fun server/0) || _ <- lists:seq(1, Servers)],
    Self = self(),
    T0 = erlang:monotonic_time(microsecond),
    Clients = [spawn(fun() -> client(S, N, K div Servers, Self) end) || S <- Pids],
    [receive {done, C} -> ok end || C <- Clients],
    T1 = erlang:monotonic_time(microsecond),
    [S ! stop || S <- Pids],
    T1 - T0.
