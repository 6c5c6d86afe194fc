%% BEAM-side helpers of bench/dist.py, compiled with erlc at bench time.
%%
%% The same code serves every peer (BEAM, Python, JInterface), so the only
%% thing that changes between rows of the table is the node on the other end.
-module(bench_dist).
-export([payload/2, start_sink/2, wait_sink/1, blast/4, start_server/1,
         call_latency/3, stop/1]).

%% The message a sender sends: {seq, I} or a binary of 1 KiB / 64 KiB.
payload(small, I) -> {seq, I};
payload(kb1, _) -> binary:copy(<<"x">>, 1024);
payload(kb64, _) -> binary:copy(<<"x">>, 65536).

%% A process registered as Name that receives Count messages (of any shape) and
%% keeps the microseconds from the first to the last one. When done it
%% re-registers as Name_done and answers {get, From}.
start_sink(Name, Count) ->
    Parent = self(),
    Pid = spawn(fun() ->
        register(Name, self()),
        Parent ! {sink_ready, self()},
        sink_first(Name, Count)
    end),
    receive {sink_ready, Pid} -> Pid end.

sink_first(Name, Count) ->
    receive _ -> ok end,
    T0 = erlang:monotonic_time(microsecond),
    sink_loop(Count - 1),
    T1 = erlang:monotonic_time(microsecond),
    unregister(Name),
    register(done_name(Name), self()),
    receive {get, From} -> From ! {sink_result, T1 - T0} end.

sink_loop(0) -> ok;
sink_loop(N) -> receive _ -> sink_loop(N - 1) end.

done_name(Name) -> list_to_atom(atom_to_list(Name) ++ "_done").

%% Block until the sink Name has its count; returns {Count - 1, Micros}
%% (intervals between the first and last message) or timeout.
wait_sink(Name) -> wait_sink(done_name(Name), 60000 div 5).

wait_sink(_, 0) -> timeout;
wait_sink(Done, Left) ->
    case whereis(Done) of
        undefined -> timer:sleep(5), wait_sink(Done, Left - 1);
        Pid ->
            Pid ! {get, self()},
            receive {sink_result, Us} -> Us after 10000 -> timeout end
    end.

%% Senders processes, each sending Count div Senders messages of Kind to Dest
%% (a pid or {Name, Node}); returns when every sender is done.
blast(Dest, Kind, Count, Senders) ->
    Per = Count div Senders,
    Refs = [begin
                {_, Ref} = spawn_monitor(fun() -> send_loop(Dest, Kind, Per) end),
                Ref
            end || _ <- lists:seq(1, Senders)],
    [receive {'DOWN', Ref, process, _, normal} -> ok end || Ref <- Refs],
    ok.

send_loop(Dest, small, N) -> send_small(Dest, N);
send_loop(Dest, Kind, N) -> send_bin(Dest, payload(Kind, 0), N).

send_small(_, 0) -> ok;
send_small(Dest, N) -> Dest ! {seq, N}, send_small(Dest, N - 1).

send_bin(_, _, 0) -> ok;
send_bin(Dest, Bin, N) -> Dest ! Bin, send_bin(Dest, Bin, N - 1).

%% A gen_server-compatible echo server registered as Name: answers
%% {'$gen_call', From, Req} with gen:reply(From, Req).
start_server(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Old -> exit(Old, kill), timer:sleep(10)
    end,
    Parent = self(),
    Pid = spawn(fun() -> register(Name, self()), Parent ! {server_ready, self()}, server() end),
    receive {server_ready, Pid} -> Pid end.

server() ->
    receive
        {'$gen_call', From, Req} -> gen:reply(From, Req), server();
        stop -> ok;
        _ -> server()
    end.

%% N gen:calls to Server (a warm-up of N div 10 first); returns
%% {P50, P99} in nanoseconds.
call_latency(Server, Req, N) ->
    [gen_server:call(Server, Req) || _ <- lists:seq(1, N div 10 + 1)],
    Ts = [begin
              T0 = erlang:monotonic_time(nanosecond),
              Req = gen_server:call(Server, Req),
              erlang:monotonic_time(nanosecond) - T0
          end || _ <- lists:seq(1, N)],
    Sorted = lists:sort(Ts),
    {lists:nth(max(1, (N * 50 + 99) div 100), Sorted),
     lists:nth(max(1, (N * 99 + 99) div 100), Sorted)}.

stop(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Pid -> exit(Pid, kill), ok
    end.
