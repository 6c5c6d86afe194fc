%% @doc Python actors as children of Erlang and Elixir supervisors.
%%
%% A Python node (`bridge.Node') allow-lists the actors BEAM may start
%% (`node.allow_spawn("counter", Counter)'). {@link start_link/3} starts one of them
%% on that node through `erlang:spawn_request/5' and returns only after the actor's
%% `init' has run, like `gen_server:start_link/3' (and, like it, passes `Args' to
%% `init' as it is: `5' gives `init(5)'). The pid returned is a local proxy linked to
%% the caller and to the actor (see {@link beam_bridge_proxy}): OTP's `supervisor'
%% needs local children. Messages to the proxy reach the actor, so it is used like
%% the actor's own pid; {@link actor/1} gives the Python pid:
%%
%% ```
%% {ok, Pid} = beam_bridge:start_link('py@127.0.0.1', counter, 5),
%% 5 = gen_server:call(Pid, get),
%% PyPid = beam_bridge:actor(Pid).    % the pid on 'py@127.0.0.1'
%% '''
%%
%% As a supervisor child:
%%
%% ```
%% ChildSpec = beam_bridge:child_spec(#{id => counter, node => 'py@127.0.0.1',
%%                                      actor => counter, args => 0}),
%% supervisor:start_child(Sup, ChildSpec).
%% '''
%%
%% Shutdown follows OTP: the supervisor sends `exit(Proxy, shutdown)' and the Python
%% actor (which traps exits when started this way) runs `terminate/2' within the
%% child's shutdown time; `brutal_kill' kills it. If the Python node goes away, the
%% proxy exits with `noconnection' and the supervisor restarts the child according
%% to its restart type.
%%
%% Wire protocol: `spawn_request(Node, beam_bridge, start_actor, [Actor, Args], [link])'.
%% The Python spawner answers the spawn request only after `init': with the pid, or
%% with the error `ignore', or with `init_failed' preceded by the message
%% `{beam_bridge_init_failed, ReqId, Reason}'.
-module(beam_bridge).

-export([start_link/3, start_link/4, start/3, start/4, child_spec/1, actor/1]).
-export([bridge_child/5, spawn_actor/4]).
-export([acquire/1, release/1, handle_count/1, is_handle/1]).

-type start_opts() :: #{timeout => timeout(), connect_wait => non_neg_integer(),
                        link => boolean(), proxy => boolean()}.
-export_type([start_opts/0]).

-type handle() :: {'$py_handle', reference(), binary()}.
%% A Python object held by a Python node: `{'$py_handle', Ref, TypeName}', where `Ref'
%% was made by that node (`node(Ref)') and `TypeName' is the object's Python class
%% (`<<"numpy.poly1d">>'). See {@link release/1}.
-export_type([handle/0]).

-define(HANDLES, beam_bridge_handles).

-define(DEFAULT_TIMEOUT, 5000).

%% @doc Start the allow-listed Python actor `Actor' on `Node' with `Args', linked
%% to the caller. Returns `{ok, Pid}' after the actor's `init', `ignore' when
%% `init' returns ignore, or `{error, Reason}'.
-spec start_link(node(), atom(), term()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Node, Actor, Args) ->
    start_link(Node, Actor, Args, #{}).

%% @doc Like {@link start_link/3}, with options: `timeout' (milliseconds, default
%% 5000) for the spawn and `init'; `connect_wait' (milliseconds, default 1000): how
%% long to wait for an unreachable Python node to come back before `{error, noconnection}';
%% `proxy' (default `true'): `false' returns the Python pid itself, linked to the
%% caller, with no local proxy (such a child breaks `supervisor:count_children/1').
-spec start_link(node(), atom(), term(), start_opts()) ->
          {ok, pid()} | ignore | {error, term()}.
start_link(Node, Actor, Args, Opts) when is_atom(Node), is_atom(Actor), is_map(Opts) ->
    start_proxied(Node, Actor, Args, Opts, true).

%% @doc Start a Python actor without a link (like `gen_server:start/3').
-spec start(node(), atom(), term()) -> {ok, pid()} | ignore | {error, term()}.
start(Node, Actor, Args) ->
    start(Node, Actor, Args, #{}).

%% @doc Like {@link start/3}, with options.
-spec start(node(), atom(), term(), start_opts()) -> {ok, pid()} | ignore | {error, term()}.
start(Node, Actor, Args, Opts) when is_atom(Node), is_atom(Actor), is_map(Opts) ->
    start_proxied(Node, Actor, Args, Opts, false).

start_proxied(Node, Actor, Args, Opts, Link) ->
    case maps:get(proxy, Opts, true) of
        true -> beam_bridge_proxy:start(Node, Actor, Args, Opts, Link);
        false -> spawn_actor(Node, Actor, Args, Opts#{link => Link})
    end.

%% @doc The Python actor behind a pid returned by {@link start_link/3}: the proxy's
%% actor, or the pid itself when it is not a local proxy's.
-spec actor(pid()) -> pid().
actor(Pid) ->
    beam_bridge_proxy:actor(Pid).

%% @doc Spawn the actor from the calling process (its parent on the Python side),
%% linked to it when `link' is true, with no proxy: what a proxy (and `proxy => false')
%% uses. Returns the Python pid.
-spec spawn_actor(node(), atom(), term(), start_opts()) -> {ok, pid()} | ignore | {error, term()}.
spawn_actor(Node, Actor, Args, Opts) ->
    Deadline = erlang:monotonic_time(millisecond) + maps:get(connect_wait, Opts, 1000),
    case do_start1(Node, Actor, Args, Opts) of
        {error, noconnection} -> retry_start(Node, Actor, Args, Opts, Deadline);
        Result -> Result
    end.

%% A Python node that is being restarted (by a beam_bridge_node sibling, say) is
%% given `connect_wait' milliseconds to come back before the start fails.
retry_start(Node, Actor, Args, Opts, Deadline) ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> {error, noconnection};
        false ->
            timer:sleep(100),
            case net_kernel:connect_node(Node) of
                true -> do_start1(Node, Actor, Args, Opts);
                _ -> retry_start(Node, Actor, Args, Opts, Deadline)
            end
    end.

do_start1(Node, Actor, Args, Opts) ->
    Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
    SpawnOpts = case maps:get(link, Opts) of
                    true -> [link];
                    false -> []
                end,
    ReqId = erlang:spawn_request(Node, beam_bridge, start_actor, [Actor, Args], SpawnOpts),
    receive
        {spawn_reply, ReqId, ok, Pid} ->
            {ok, Pid};
        {spawn_reply, ReqId, error, ignore} ->
            ignore;
        {spawn_reply, ReqId, error, init_failed} ->
            receive
                {beam_bridge_init_failed, ReqId, Reason} -> {error, Reason}
            after 0 ->
                {error, init_failed}
            end;
        {spawn_reply, ReqId, error, notsup} ->
            {error, {not_allowed, Node, Actor}};
        {spawn_reply, ReqId, error, Reason} ->
            {error, Reason}
    after Timeout ->
        case erlang:spawn_request_abandon(ReqId) of
            true ->
                {error, timeout};
            false ->
                %% The reply arrived meanwhile: take it and stop what it started.
                receive
                    {spawn_reply, ReqId, ok, Pid} ->
                        exit(Pid, kill),
                        {error, timeout};
                    {spawn_reply, ReqId, error, Reason} ->
                        {error, Reason}
                end
        end
    end.

%% @doc A supervisor child spec (a map) for a Python actor. Keys: `node',
%% `actor' (required), `args' (default `[]'), `id' (default the actor name),
%% `restart' (default `permanent'), `shutdown' (default 5000), `timeout'
%% (start timeout, default 5000).
-spec child_spec(#{node := node(), actor := atom(), atom() => term()}) ->
          supervisor:child_spec().
child_spec(#{node := Node, actor := Actor} = Spec) ->
    Args = maps:get(args, Spec, []),
    StartOpts = maps:merge(#{timeout => maps:get(timeout, Spec, ?DEFAULT_TIMEOUT)},
                           maps:with([connect_wait, proxy], Spec)),
    #{id => maps:get(id, Spec, Actor),
      start => {beam_bridge, start_link, [Node, Actor, Args, StartOpts]},
      restart => maps:get(restart, Spec, permanent),
      shutdown => maps:get(shutdown, Spec, 5000),
      type => worker,
      modules => [beam_bridge]}.

%% @doc The other direction: a BEAM child of a Python supervisor (like
%% `supervisor_bridge'). A Python supervisor spawns this function on a BEAM node
%% with `spawn_request(Node, beam_bridge, bridge_child, [Parent, Ref, M, F, A], [link])'
%% (see `bridge.beam_child' in Python). It calls `apply(M, F, A)' (a start function
%% returning `{ok, Pid}', such as `gen_server:start_link/3'), tells the Python
%% parent `{beam_bridge_started, Ref, Result}', and then stands for the child: the
%% child's exit becomes this process's exit (seen by the Python supervisor), and an
%% exit signal from the parent (`shutdown') is passed on to the child, waiting for it
%% to stop.
-spec bridge_child(pid(), reference(), module(), atom(), [term()]) -> no_return().
bridge_child(Parent, Ref, M, F, A) ->
    process_flag(trap_exit, true),
    case catch apply(M, F, A) of
        {ok, Child} when is_pid(Child) ->
            Parent ! {beam_bridge_started, Ref, {ok, Child}},
            bridge_loop(Parent, Child);
        {ok, Child, _Info} when is_pid(Child) ->
            Parent ! {beam_bridge_started, Ref, {ok, Child}},
            bridge_loop(Parent, Child);
        ignore ->
            Parent ! {beam_bridge_started, Ref, ignore},
            exit(normal);
        {error, Reason} ->
            Parent ! {beam_bridge_started, Ref, {error, Reason}},
            exit(normal);
        {'EXIT', Reason} ->
            Parent ! {beam_bridge_started, Ref, {error, Reason}},
            exit(normal);
        Other ->
            Parent ! {beam_bridge_started, Ref, {error, {bad_return_value, Other}}},
            exit(normal)
    end.

bridge_loop(Parent, Child) ->
    receive
        {'EXIT', Child, Reason} ->
            exit(Reason);
        {'EXIT', Parent, Reason} ->
            exit(Child, Reason),
            receive
                {'EXIT', Child, _} -> exit(Reason)
            end;
        _Other ->
            bridge_loop(Parent, Child)
    end.

%% @doc Take a hold on a handle for the calling process: the Python object stays
%% alive at least until this process dies or calls {@link release/1}. A handle is held
%% from the start by the process it was made for (the caller of the call whose reply
%% carried it); acquire it from any other process that keeps it. Returns `ok', or
%% `{error, {stale_handle, Handle}}' when the object was already freed.
-spec acquire(handle()) -> ok | {error, {stale_handle, handle()} | {not_a_handle, term()}}.
acquire(Handle) ->
    handles_call(Handle, {acquire, Handle}).

%% @doc Drop the calling process's hold on a handle; the Python object is freed
%% when its last holder releases it or dies (a holder's node going down counts as its
%% death). Returns `ok', `{error, not_holder}' when the caller does not hold it, or
%% `{error, {stale_handle, Handle}}' when it was already freed.
%%
%% ```
%% {ok, H} = gen_server:call({models, 'py@127.0.0.1'}, {fit, Xs, Ys, 2}),
%% Y = gen_server:call({models, 'py@127.0.0.1'}, {predict, H, 2.0}),
%% ok = beam_bridge:release(H).
%% '''
-spec release(handle()) -> ok | {error, not_holder | {stale_handle, handle()} | {not_a_handle, term()}}.
release(Handle) ->
    handles_call(Handle, {release, Handle}).

%% @doc The number of live handles on a Python node (0 before its first handle).
-spec handle_count(node()) -> non_neg_integer().
handle_count(Node) when is_atom(Node) ->
    try gen_server:call({?HANDLES, Node}, count)
    catch exit:{noproc, _} -> 0
    end.

%% @doc Whether `Term' has the shape of a handle.
-spec is_handle(term()) -> boolean().
is_handle({'$py_handle', Ref, Type}) when is_reference(Ref), is_binary(Type) -> true;
is_handle(_) -> false.

handles_call({'$py_handle', Ref, Type} = Handle, Request) when is_reference(Ref), is_binary(Type) ->
    %% No handle table on that node (it made no handle since it started): stale.
    try gen_server:call({?HANDLES, node(Ref)}, Request)
    catch exit:{noproc, _} -> {error, {stale_handle, Handle}}
    end;
handles_call(Other, _Request) ->
    {error, {not_a_handle, Other}}.
