%% BEAM-side helpers of bench/supervision.py, compiled with erlc at bench time.
%%
%% Two things live here: the gen_server used as the BEAM child in every
%% workload (`start_link/1', answers `get'), and the timing loops, which run on
%% the BEAM and take `erlang:monotonic_time(nanosecond)' around
%% `exit(Child, kill)' and the first answer of the restarted child. Compiled, so
%% that no erl_eval overhead is part of any figure.
%%
%% Every restart is timed in three marks, all from the kill:
%%   down   - the killer's monitor reports the child dead;
%%   found  - the new child's pid is known;
%%   answer - `gen_server:call(New, get)' has returned.
%% The result of a measurement is a list of {Down, Found, Answer} in nanoseconds.
-module(bench_sup).
-behaviour(gen_server).

-export([start_link/1, start_remote/2, remote_init/2, start_sup/1, stop_sup/1,
         beam_child_spec/2, remote_child_spec/3, measure_sup/4, measure_named/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(WATCH, bench_sup_watch).

%% -- the child ---------------------------------------------------------------

%% A gen_server registered as Name. Its init tells the process registered as
%% bench_sup_watch (if any) that it is up: `{bench_up, Name, self()}'.
start_link(Name) ->
    gen_server:start_link({local, Name}, ?MODULE, Name, []).

init(Name) ->
    case whereis(?WATCH) of
        undefined -> ok;
        W -> W ! {bench_up, Name, self()}
    end,
    {ok, 0}.

%% The same server on another BEAM node, linked to the caller (a supervisor):
%% spawned there with a link, like beam_bridge:start_link/3 starts a Python
%% actor, and returning once it is up.
start_remote(Node, Name) ->
    Pid = proc_lib:spawn_link(Node, ?MODULE, remote_init, [self(), Name]),
    receive
        {bench_remote_up, Pid} -> {ok, Pid}
    after 5000 ->
        unlink(Pid), exit(Pid, kill), {error, timeout}
    end.

remote_init(Parent, Name) ->
    register(Name, self()),
    Parent ! {bench_remote_up, self()},
    gen_server:enter_loop(?MODULE, [], 0, {local, Name}).

handle_call(get, _From, N) -> {reply, N, N};
handle_call(_, _From, N) -> {reply, {error, unknown}, N}.

handle_cast(_, N) -> {noreply, N}.

handle_info(_, N) -> {noreply, N}.

%% -- Erlang supervisors --------------------------------------------------------

%% A one_for_one supervisor (beam_bridge_sup) that never gives up, not linked to
%% the caller (the evaluation loop of tests/beam.py).
start_sup(Children) ->
    {ok, Sup} = beam_bridge_sup:start_link(
                  #{strategy => one_for_one, intensity => 1000000, period => 1}, Children),
    unlink(Sup),
    Sup.

stop_sup(Sup) ->
    MRef = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', MRef, process, Sup, _} -> ok after 10000 -> timeout end.

beam_child_spec(Id, Name) ->
    #{id => Id, start => {?MODULE, start_link, [Name]}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

remote_child_spec(Id, Node, Name) ->
    #{id => Id, start => {?MODULE, start_remote, [Node, Name]}, restart => permanent,
      shutdown => 5000, type => worker, modules => [?MODULE]}.

%% -- timing loops --------------------------------------------------------------

%% N restarts of child Id of the Erlang supervisor Sup, PauseMs apart. The new
%% pid is found with supervisor:which_children/1 (once the old one is down; the
%% supervisor answers only after its restart is done).
measure_sup(Sup, Id, N, PauseMs) ->
    [begin timer:sleep(PauseMs), one_sup(Sup, Id) end || _ <- lists:seq(1, N)].

one_sup(Sup, Id) ->
    Old = wait_child(Sup, Id, undefined),
    MRef = monitor(process, Old),
    T0 = now_ns(),
    exit(Old, kill),
    receive {'DOWN', MRef, process, _, _} -> ok end,
    T1 = now_ns(),
    New = wait_child(Sup, Id, Old),
    T2 = now_ns(),
    _ = gen_server:call(New, get),
    T3 = now_ns(),
    {T1 - T0, T2 - T0, T3 - T0}.

wait_child(Sup, Id, Old) ->
    case lists:keyfind(Id, 1, supervisor:which_children(Sup)) of
        {Id, P, _, _} when is_pid(P), P =/= Old -> P;
        _ -> erlang:yield(), wait_child(Sup, Id, Old)
    end.

%% N restarts of the bench_sup child registered as Name (under any supervisor,
%% here Erlang's or Python's), PauseMs apart. The new pid is the one its init
%% announces to this process, registered as bench_sup_watch meanwhile.
measure_named(Name, N, PauseMs) ->
    register(?WATCH, self()),
    try
        [begin timer:sleep(PauseMs), one_named(Name) end || _ <- lists:seq(1, N)]
    after
        unregister(?WATCH),
        flush_up()
    end.

one_named(Name) ->
    flush_up(),
    Old = wait_whereis(Name, 5000),
    MRef = monitor(process, Old),
    T0 = now_ns(),
    exit(Old, kill),
    receive {'DOWN', MRef, process, _, _} -> ok end,
    T1 = now_ns(),
    New = receive {bench_up, Name, P} when P =/= Old -> P
          after 10000 -> error({no_restart, Name})
          end,
    T2 = now_ns(),
    _ = gen_server:call(New, get),
    T3 = now_ns(),
    {T1 - T0, T2 - T0, T3 - T0}.

wait_whereis(Name, 0) -> error({not_registered, Name});
wait_whereis(Name, Left) ->
    case whereis(Name) of
        undefined -> timer:sleep(1), wait_whereis(Name, Left - 1);
        P -> P
    end.

flush_up() ->
    receive {bench_up, _, _} -> flush_up() after 0 -> ok end.

now_ns() -> erlang:monotonic_time(nanosecond).
