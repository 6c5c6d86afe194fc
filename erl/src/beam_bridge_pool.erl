%% @doc A pool of Python workers for BEAM callers, under a BEAM supervisor.
%%
%% N Python actors (allow-listed on their node with `node.allow_spawn(Name, Cls)')
%% are started with {@link beam_bridge:start_link/4} under the pool's own
%% `one_for_one' supervisor. {@link call/3} checks out one idle worker, runs
%% `gen_server:call(Worker, Request, Remaining)' on it and checks it back in, the
%% way poolboy's `transaction/3' does:
%%
%% ```
%% Spec = beam_bridge_pool:child_spec(#{name => my_pool, nodes => ['py1@host', 'py2@host'],
%%                                      actor => worker, args => [], size => 4}),
%% {ok, _} = supervisor:start_child(MySup, Spec),
%% Reply = beam_bridge_pool:call(my_pool, {predict, Input}, 2000).
%% '''
%%
%% Theory of operation. The pool is one `gen_server' (this module, the manager)
%% that starts and links its workers' supervisor ({@link beam_bridge_pool_sup}) in
%% `init', as poolboy does, so the pool is a single child in the caller's tree.
%% Each worker is a permanent child; its start function tells the manager the new
%% pid, and the manager monitors it. The manager keeps the idle workers in a queue
%% (`fifo', the default, spreads calls over all workers; `lifo' keeps a few warm),
%% the busy ones in a map with the caller who holds them (monitored: a caller that
%% dies checks its worker in), and callers waiting for a worker in a FIFO queue.
%%
%% Timeouts. `Timeout' covers waiting for a worker and running the request. A caller
%% still queued at its timeout leaves the queue and exits
%% `{timeout, {beam_bridge_pool, call, [Pool, Request, Timeout]}}', like
%% `gen_server:call/3'. A worker that has not answered by then is considered stuck:
%% the manager kills it (`exit(Worker, kill)'), its supervisor starts a replacement,
%% and the caller exits with the same `timeout' reason. Any other failure of the
%% worker's call exits the caller with `{Reason, {beam_bridge_pool, call, ...}}'.
%%
%% Workers on several nodes. With `nodes => [N1, N2, ...]' worker I runs on node
%% `I rem length(Nodes)'. When a node is down its workers' start functions return
%% `ignore' (the child stays in the supervisor, not running), so a lost node costs
%% the pool only its own workers. The manager watches `nodeup' and, every
%% `retry_interval' milliseconds while some workers are missing, tries to reach
%% their nodes from a helper process and restarts the missing workers with
%% `supervisor:restart_child/2': the pool grows back when the node returns.
-module(beam_bridge_pool).
-behaviour(gen_server).

-export([start_link/1, child_spec/1, stop/1, stop/2]).
-export([call/2, call/3, checkout/2, checkin/2, status/1, workers/1]).
-export([worker_started/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-type pool() :: atom() | pid() | {atom(), node()} | {global, term()} | {via, module(), term()}.
-type opts() :: #{actor := atom(), node => node(), nodes => [node()], name => atom(),
                  args => term(), size => pos_integer(), strategy => fifo | lifo,
                  timeout => timeout(), shutdown => timeout() | brutal_kill,
                  intensity => non_neg_integer(), period => pos_integer(),
                  retry_interval => pos_integer(), id => term(),
                  restart => supervisor:restart()}.
-export_type([pool/0, opts/0]).

-define(DEFAULT_SIZE, 5).
-define(DEFAULT_CALL_TIMEOUT, 5000).
-define(DEFAULT_RETRY, 1000).

-record(state, {
    sup :: pid() | undefined,          % the workers' supervisor (linked)
    size :: pos_integer(),
    nodes :: [node()],
    strategy :: fifo | lifo,
    retry :: pos_integer(),
    workers = #{} :: #{pid() => reference()},          % worker => its monitor
    idle = queue:new() :: queue:queue(pid()),
    busy = #{} :: #{pid() => {reference(), reference()}}, % worker => {CRef, caller monitor}
    waiting = queue:new() :: queue:queue({gen_server:from(), reference(), reference()}),
    refill :: pid() | undefined,       % helper restarting missing workers
    timer :: reference() | undefined
}).

%% -- starting ---------------------------------------------------------------------

%% @doc Start a pool linked to the caller. Options (a map):
%% `actor' (required) the allow-listed actor name; `node' or `nodes' (required) where
%% the workers run; `name' registers the pool locally; `args' (default `[]') each
%% worker's init argument; `size' (default 5) the number of workers; `strategy'
%% (`fifo' default, or `lifo') the order idle workers are handed out; `timeout'
%% (default 5000) a worker's start timeout; `shutdown' (default 5000) a worker's
%% shutdown; `intensity' (default `2 * size') and `period' (default 5 seconds) the
%% workers' supervisor restart limits; `retry_interval' (default 1000 ms) how often
%% missing workers are retried.
-spec start_link(opts()) -> {ok, pid()} | ignore | {error, term()}.
start_link(#{actor := Actor} = Opts) when is_atom(Actor) ->
    case maps:find(name, Opts) of
        {ok, Name} when is_atom(Name) -> gen_server:start_link({local, Name}, ?MODULE, Opts, []);
        error -> gen_server:start_link(?MODULE, Opts, [])
    end.

%% @doc A supervisor child spec (map) for a pool, for `supervisor:start_child/2' or
%% a supervisor's `init/1'. The pool supervises its workers, so its type is
%% `supervisor' and its shutdown `infinity'. `id' defaults to the pool's name,
%% `restart' to `permanent'.
-spec child_spec(opts()) -> supervisor:child_spec().
child_spec(#{actor := _} = Opts) ->
    #{id => maps:get(id, Opts, maps:get(name, Opts, ?MODULE)),
      start => {?MODULE, start_link, [maps:remove(id, Opts)]},
      restart => maps:get(restart, Opts, permanent),
      shutdown => infinity,
      type => supervisor,
      modules => [?MODULE, beam_bridge_pool_sup]}.

%% @doc Stop the pool and its workers (`gen_server:stop/1').
-spec stop(pool()) -> ok.
stop(Pool) -> gen_server:stop(Pool).

%% @doc Stop the pool (reason `shutdown') and its workers, waiting at most `Timeout'.
-spec stop(pool(), timeout()) -> ok.
stop(Pool, Timeout) -> gen_server:stop(Pool, shutdown, Timeout).

%% -- calling ----------------------------------------------------------------------

%% @doc `call(Pool, Request, 5000)'.
-spec call(pool(), term()) -> term().
call(Pool, Request) -> call(Pool, Request, ?DEFAULT_CALL_TIMEOUT).

%% @doc Run `gen_server:call(Worker, Request)' on one idle worker of `Pool' and
%% return its reply. `Timeout' (milliseconds or `infinity') covers the wait for a
%% worker and the call; past it the caller exits
%% `{timeout, {beam_bridge_pool, call, [Pool, Request, Timeout]}}' and a worker
%% still running the request is killed and replaced.
-spec call(pool(), term(), timeout()) -> term().
call(Pool, Request, Timeout) ->
    MFA = {?MODULE, call, [Pool, Request, Timeout]},
    Deadline = deadline(Timeout),
    CRef = make_ref(),
    Worker = try gen_server:call(Pool, {checkout, CRef}, Timeout)
             catch exit:{timeout, _} ->
                     gen_server:cast(Pool, {cancel_waiting, CRef}),
                     exit({timeout, MFA});
                   exit:Reason ->
                     exit(pool_reason(Reason, MFA))
             end,
    case remaining(Deadline) of
        0 ->
            %% The wait for a worker used the whole timeout: the worker is not stuck.
            gen_server:cast(Pool, {checkin, Worker, CRef}),
            exit({timeout, MFA});
        Remaining ->
            call_worker(Pool, Worker, CRef, Request, Remaining, MFA)
    end.

call_worker(Pool, Worker, CRef, Request, Remaining, MFA) ->
    try gen_server:call(Worker, Request, Remaining) of
        Reply ->
            gen_server:cast(Pool, {checkin, Worker, CRef}),
            Reply
    catch exit:{timeout, _} ->
            gen_server:cast(Pool, {expired, Worker, CRef}),
            exit({timeout, MFA});
          exit:Reason ->
            gen_server:cast(Pool, {checkin, Worker, CRef}),
            exit(pool_reason(Reason, MFA))
    end.

%% `gen_server:call''s exit reason, restated for the pool's call.
pool_reason({Reason, {gen_server, call, _}}, MFA) -> {Reason, MFA};
pool_reason(Reason, _MFA) -> Reason.

%% @doc Check a worker out of the pool for several calls (poolboy's `checkout/3');
%% give it back with {@link checkin/2}. Exits like `gen_server:call/3' on timeout.
%% The worker is checked in by itself if the caller dies.
-spec checkout(pool(), timeout()) -> pid().
checkout(Pool, Timeout) ->
    CRef = make_ref(),
    try gen_server:call(Pool, {checkout, CRef}, Timeout)
    catch exit:{timeout, _} ->
            gen_server:cast(Pool, {cancel_waiting, CRef}),
            exit({timeout, {?MODULE, checkout, [Pool, Timeout]}})
    end.

%% @doc Give back a worker taken with {@link checkout/2}.
-spec checkin(pool(), pid()) -> ok.
checkin(Pool, Worker) -> gen_server:cast(Pool, {checkin, Worker, any}).

%% @doc `#{size, workers, idle, busy, waiting}': the configured size and how many
%% workers are running, idle, checked out, and how many callers wait.
-spec status(pool()) -> #{atom() => non_neg_integer()}.
status(Pool) -> gen_server:call(Pool, status).

%% @doc The pids of the running workers.
-spec workers(pool()) -> [pid()].
workers(Pool) -> gen_server:call(Pool, workers).

deadline(infinity) -> infinity;
deadline(Ms) -> erlang:monotonic_time(millisecond) + Ms.

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% @private Called by the workers' supervisor when a worker started.
-spec worker_started(pid(), term(), pid()) -> ok.
worker_started(Manager, Id, Worker) ->
    Manager ! {beam_bridge_pool_worker, Id, Worker},
    ok.

%% -- gen_server callbacks ---------------------------------------------------------

%% @private
init(Opts) ->
    process_flag(trap_exit, true),
    Nodes = case Opts of
                #{nodes := [_ | _] = Ns} -> Ns;
                #{node := N} -> [N];
                _ -> erlang:error({badarg, missing_node})
            end,
    Size = maps:get(size, Opts, ?DEFAULT_SIZE),
    ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
    %% Reach every node first, so the pool starts with all the workers it can have.
    _ = [net_kernel:connect_node(N) || N <- Nodes],
    case beam_bridge_pool_sup:start_link(self(), Opts#{nodes => Nodes, size => Size}) of
        {ok, Sup} ->
            State = #state{sup = Sup, size = Size, nodes = Nodes,
                           strategy = maps:get(strategy, Opts, fifo),
                           retry = maps:get(retry_interval, Opts, ?DEFAULT_RETRY)},
            {ok, schedule_refill(State)};
        {error, Reason} ->
            {stop, Reason}
    end.

%% @private
handle_call({checkout, CRef}, {Caller, _} = From, State) ->
    case queue:out(State#state.idle) of
        {{value, Worker}, Idle} ->
            MRef = erlang:monitor(process, Caller),
            Busy = maps:put(Worker, {CRef, MRef}, State#state.busy),
            {reply, Worker, State#state{idle = Idle, busy = Busy}};
        {empty, _} ->
            MRef = erlang:monitor(process, Caller),
            Waiting = queue:in({From, CRef, MRef}, State#state.waiting),
            {noreply, State#state{waiting = Waiting}}
    end;
handle_call(status, _From, State) ->
    Status = #{size => State#state.size,
               workers => map_size(State#state.workers),
               idle => queue:len(State#state.idle),
               busy => map_size(State#state.busy),
               waiting => queue:len(State#state.waiting)},
    {reply, Status, State};
handle_call(workers, _From, State) ->
    {reply, maps:keys(State#state.workers), State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
handle_cast({checkin, Worker, CRef}, State) ->
    {noreply, checkin_worker(Worker, CRef, State)};
handle_cast({expired, Worker, CRef}, State) ->
    case maps:find(Worker, State#state.busy) of
        {ok, {Ref, MRef}} when Ref =:= CRef ->
            %% Stuck past its caller's timeout: kill it; its supervisor replaces it.
            erlang:demonitor(MRef, [flush]),
            exit(Worker, kill),
            logger:warning("beam_bridge_pool ~p: worker ~p was still busy at its caller's "
                           "timeout; killed, a replacement is starting", [pool_name(), Worker]),
            {noreply, forget_worker(Worker, State)};
        _ ->
            {noreply, State}
    end;
handle_cast({cancel_waiting, CRef}, State) ->
    Pred = fun({_From, Ref, MRef}) when Ref =:= CRef -> erlang:demonitor(MRef, [flush]), false;
              (_) -> true
           end,
    Waiting = queue:filter(Pred, State#state.waiting),
    %% The worker may have been handed over just as the caller gave up.
    Held = [W || {W, {Ref, _}} <- maps:to_list(State#state.busy), Ref =:= CRef],
    {noreply, lists:foldl(fun(W, S) -> checkin_worker(W, CRef, S) end,
                          State#state{waiting = Waiting}, Held)};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
handle_info({beam_bridge_pool_worker, _Id, Worker}, State) ->
    MRef = erlang:monitor(process, Worker),
    Workers = maps:put(Worker, MRef, State#state.workers),
    {noreply, give_worker(Worker, State#state{workers = Workers})};
handle_info({'DOWN', MRef, process, Pid, _Reason}, State) ->
    case maps:find(Pid, State#state.workers) of
        {ok, MRef} ->
            {noreply, schedule_refill(forget_worker(Pid, State))};
        _ ->
            {noreply, caller_down(MRef, State)}
    end;
handle_info({nodeup, Node, _Info}, State) ->
    case lists:member(Node, State#state.nodes) of
        true -> {noreply, start_refill(State)};
        false -> {noreply, State}
    end;
handle_info({nodedown, _Node, _Info}, State) ->
    {noreply, State};
handle_info(refill, State) ->
    {noreply, start_refill(State#state{timer = undefined})};
handle_info({'EXIT', Sup, Reason}, #state{sup = Sup} = State) ->
    {stop, Reason, State#state{sup = undefined}};
handle_info({'EXIT', Refill, _}, #state{refill = Refill} = State) ->
    {noreply, schedule_refill(State#state{refill = undefined})};
handle_info({'EXIT', _Pid, _Reason}, State) ->
    {noreply, State};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private Stop the workers' supervisor (and with it the workers) before leaving.
terminate(Reason, #state{sup = Sup, refill = Refill}) ->
    _ = [exit(Refill, kill) || is_pid(Refill)],
    case Sup of
        undefined ->
            ok;
        _ ->
            exit(Sup, case Reason of normal -> shutdown; _ -> Reason end),
            receive {'EXIT', Sup, _} -> ok end
    end.

%% -- internals --------------------------------------------------------------------

%% A worker comes back (or is new): hand it to the first waiting caller, or keep it.
give_worker(Worker, State) ->
    case queue:out(State#state.waiting) of
        {{value, {{Caller, _} = From, CRef, MRef}}, Waiting} ->
            case is_process_alive_local(Caller) of
                true ->
                    gen_server:reply(From, Worker),
                    Busy = maps:put(Worker, {CRef, MRef}, State#state.busy),
                    State#state{waiting = Waiting, busy = Busy};
                false ->
                    erlang:demonitor(MRef, [flush]),
                    give_worker(Worker, State#state{waiting = Waiting})
            end;
        {empty, _} ->
            Idle = case State#state.strategy of
                       fifo -> queue:in(Worker, State#state.idle);
                       lifo -> queue:in_r(Worker, State#state.idle)
                   end,
            State#state{idle = Idle}
    end.

pool_name() ->
    case process_info(self(), registered_name) of
        {registered_name, Name} -> Name;
        _ -> self()
    end.

is_process_alive_local(Pid) when node(Pid) =:= node() -> is_process_alive(Pid);
is_process_alive_local(_Pid) -> true.

checkin_worker(Worker, CRef, State) ->
    case maps:find(Worker, State#state.busy) of
        {ok, {Ref, MRef}} when CRef =:= any; Ref =:= CRef ->
            erlang:demonitor(MRef, [flush]),
            give_worker(Worker, State#state{busy = maps:remove(Worker, State#state.busy)});
        _ ->
            State
    end.

%% Drop every trace of a worker that died or was killed.
forget_worker(Worker, State) ->
    case maps:take(Worker, State#state.workers) of
        {MRef, Workers} -> erlang:demonitor(MRef, [flush]);
        error -> Workers = State#state.workers
    end,
    Busy = case maps:take(Worker, State#state.busy) of
               {{_CRef, CallerRef}, B} -> erlang:demonitor(CallerRef, [flush]), B;
               error -> State#state.busy
           end,
    Idle = queue:filter(fun(W) -> W =/= Worker end, State#state.idle),
    State#state{workers = Workers, busy = Busy, idle = Idle}.

%% A caller holding a worker, or waiting for one, died.
caller_down(MRef, State) ->
    Held = [W || {W, {_, Ref}} <- maps:to_list(State#state.busy), Ref =:= MRef],
    case Held of
        [Worker] ->
            give_worker(Worker, State#state{busy = maps:remove(Worker, State#state.busy)});
        [] ->
            Waiting = queue:filter(fun({_, _, Ref}) -> Ref =/= MRef end, State#state.waiting),
            State#state{waiting = Waiting}
    end.

%% While workers are missing, try again every `retry_interval' milliseconds.
schedule_refill(#state{timer = undefined, refill = undefined} = State)
  when map_size(State#state.workers) < State#state.size ->
    State#state{timer = erlang:send_after(State#state.retry, self(), refill)};
schedule_refill(State) ->
    State.

%% Reach missing workers' nodes and restart those workers, in a helper process so
%% that neither callers nor the manager wait on a connection attempt.
start_refill(#state{refill = undefined} = State)
  when map_size(State#state.workers) < State#state.size ->
    _ = [erlang:cancel_timer(T) || T <- [State#state.timer], T =/= undefined],
    Sup = State#state.sup,
    Refill = spawn_link(fun() -> beam_bridge_pool_sup:restart_missing(Sup) end),
    State#state{refill = Refill, timer = undefined};
start_refill(State) ->
    State.
