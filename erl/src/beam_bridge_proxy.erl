%% @doc The local stand-in for a Python actor in a BEAM supervision tree.
%%
%% OTP's `supervisor' assumes local children: `count_children/1' calls
%% `is_process_alive/1' on each child, which fails with `badarg' on a pid of
%% another node. So {@link beam_bridge:start_link/4} does not hand the supervisor
%% the Python pid but the pid of a local proxy, in the spirit of `supervisor_bridge':
%%
%% ```
%%   supervisor --link-- proxy --link-- guard --link-- Python actor
%% '''
%%
%% <ul>
%% <li>The <b>proxy</b> is what `which_children' shows. Every message it gets that
%%     is not an exit signal is forwarded to the actor, so `gen_server:call(Proxy, R)',
%%     `gen_server:cast', `sys' requests and plain `!' reach the actor, which replies
%%     to the caller directly. {@link beam_bridge:actor/1} gives the actor's pid.</li>
%% <li>The <b>guard</b> sent the spawn request, so it is the actor's parent: an exit
%%     signal from it makes the actor (which traps exits) run `terminate/2'.</li>
%% </ul>
%%
%% Exits are relayed both ways:
%% <ul>
%% <li>the supervisor's `exit(Proxy, shutdown)': the guard passes `shutdown' to the
%%     actor, the proxy waits for the actor to finish `terminate' and then exits
%%     `shutdown' (the supervisor's shutdown time bounds the wait);</li>
%% <li>`exit(Proxy, kill)' (`brutal_kill', or the shutdown time running out): the
%%     guard sees the proxy killed and kills the actor, so `terminate' does not run;</li>
%% <li>the actor's exit (a crash, `noconnection' when its node is lost): the guard and
%%     then the proxy exit with the same reason, and the supervisor restarts the child.
%%     When the lost node is owned by a local {@link beam_bridge_node}, the proxy
%%     first waits for that owner to exit, so the supervisor sees the node's death
%%     before the child's (one restart for a `rest_for_one' tree, as for a BEAM child);</li>
%% <li>a link from any other process acts as on a process that does not trap exits:
%%     a non-`normal' reason stops the proxy and the actor with that reason.</li>
%% </ul>
-module(beam_bridge_proxy).

-export([start/5, actor/1]).

-define(ACTOR_KEY, '$beam_bridge_actor').
-define(STOP, '$beam_bridge_stop').
%% How long a proxy whose actor exited `shutdown' waits to learn whether the actor's
%% node (owned by a local beam_bridge_node) is stopping, before exiting anyway.
-define(NODE_STOP_GRACE, 5000).
%% How long a proxy whose actor's node was lost waits for that node's owner to exit
%% (the owner's own stop_timeout bounds it in practice).
-define(NODE_LOST_WAIT, 30000).

%% @doc Start a proxy and its actor `Actor' on `Node'; `Link' links the proxy to
%% the caller. Returns `{ok, Proxy}' once the actor's `init' has run, `ignore' or
%% `{error, Reason}' (and then no process is left behind).
-spec start(node(), atom(), term(), map(), boolean()) -> {ok, pid()} | ignore | {error, term()}.
start(Node, Actor, Args, Opts, Link) ->
    Caller = self(),
    Ref = make_ref(),
    SpawnOpts = case Link of
                    true -> [link, monitor];
                    false -> [monitor]
                end,
    {Proxy, MRef} = spawn_opt(fun() -> proxy_init(Caller, Ref, Node, Actor, Args, Opts) end,
                              SpawnOpts),
    receive
        {Ref, Result} ->
            erlang:demonitor(MRef, [flush]),
            Result;
        {'DOWN', MRef, process, Proxy, Reason} ->
            {error, Reason}
    end.

%% @doc The Python actor a proxy stands for. A pid of another node is returned as
%% it is (it is the actor itself when it was started with `proxy => false').
-spec actor(pid()) -> pid().
actor(Pid) when is_pid(Pid), node(Pid) =:= node() ->
    case erlang:process_info(Pid, dictionary) of
        {dictionary, Dict} ->
            case lists:keyfind(?ACTOR_KEY, 1, Dict) of
                {_, Actor} -> Actor;
                false -> erlang:error({not_a_proxy, Pid})
            end;
        undefined ->
            erlang:exit({noproc, {beam_bridge, actor, [Pid]}})
    end;
actor(Pid) when is_pid(Pid) ->
    Pid.

%% -- the proxy ----------------------------------------------------------------------

proxy_init(Caller, Ref, Node, Actor, Args, Opts) ->
    process_flag(trap_exit, true),
    Proxy = self(),
    GuardRef = make_ref(),
    Guard = spawn_link(fun() -> guard_init(Proxy, GuardRef, Node, Actor, Args, Opts) end),
    receive
        {GuardRef, {ok, ActorPid}} ->
            put(?ACTOR_KEY, ActorPid),
            Caller ! {Ref, {ok, Proxy}},
            %% The owner of this incarnation of the node, if a local one has it.
            loop(Caller, Guard, ActorPid, beam_bridge_node:owner(Node));
        {GuardRef, Other} ->
            Caller ! {Ref, Other},
            exit(normal);
        {'EXIT', Guard, Reason} ->
            Caller ! {Ref, {error, Reason}},
            exit(normal)
    end.

loop(Parent, Guard, Actor, Owner) ->
    receive
        {'EXIT', Parent, Reason} ->
            stop_actor(Guard, Reason);
        {'EXIT', Guard, Reason} ->
            actor_exited(Owner, Reason);
        {'EXIT', _Other, normal} ->
            loop(Parent, Guard, Actor, Owner);
        {'EXIT', _Other, Reason} ->
            stop_actor(Guard, Reason);
        Message ->
            Actor ! Message,
            loop(Parent, Guard, Actor, Owner)
    end.

%% The parent (a supervisor) stops the child: the guard passes the reason on, and
%% the actor's exit ends the guard; then the proxy exits with the parent's reason.
stop_actor(Guard, Reason) ->
    Guard ! {?STOP, self(), Reason},
    receive
        {'EXIT', Guard, _} -> exit(Reason)
    end.

actor_exited(Owner, Reason) when is_pid(Owner), Reason =:= noconnection ->
    wait_owner(Owner, ?NODE_LOST_WAIT),
    exit(Reason);
actor_exited(Owner, Reason) when is_pid(Owner), Reason =:= shutdown ->
    wait_owner(Owner, ?NODE_STOP_GRACE),
    exit(Reason);
actor_exited(_Owner, Reason) ->
    exit(Reason).

%% The actor's node is down (or stopping) and the local beam_bridge_node that owned
%% it when the actor started is about to exit (it watches the node and its OS
%% process): let the supervisor see its exit before ours. An owner already gone
%% answers at once; the wait is bounded in any case.
wait_owner(Owner, Timeout) ->
    MRef = erlang:monitor(process, Owner),
    receive
        {'DOWN', MRef, process, Owner, _} -> ok
    after Timeout ->
        erlang:demonitor(MRef, [flush]),
        ok
    end.

%% -- the guard ----------------------------------------------------------------------

guard_init(Proxy, Ref, Node, Actor, Args, Opts) ->
    process_flag(trap_exit, true),
    case beam_bridge:spawn_actor(Node, Actor, Args, Opts#{link => true}) of
        {ok, ActorPid} ->
            Proxy ! {Ref, {ok, ActorPid}},
            guard_loop(Proxy, ActorPid);
        Other ->
            Proxy ! {Ref, Other},
            exit(normal)
    end.

guard_loop(Proxy, Actor) ->
    receive
        {?STOP, Proxy, Reason} ->
            %% From the actor's parent, so the actor runs terminate(Reason).
            exit(Actor, Reason),
            guard_loop(Proxy, Actor);
        {'EXIT', Actor, Reason} ->
            exit(Reason);
        {'EXIT', Proxy, killed} ->
            exit(Actor, kill),
            exit(killed);
        {'EXIT', Proxy, Reason} ->
            exit(Actor, Reason),
            exit(Reason);
        _ ->
            guard_loop(Proxy, Actor)
    end.
