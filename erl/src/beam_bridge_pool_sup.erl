%% @doc The supervisor of a {@link beam_bridge_pool}'s Python workers.
%%
%% A `one_for_one' supervisor started and linked by the pool's manager. It has one
%% permanent child per worker, with id `{Node, I}': worker `I' (0-based) runs on
%% node `lists:nth(I rem length(Nodes) + 1, Nodes)'. A worker is started with
%% {@link beam_bridge:start_link/4}, so it is a real Python actor linked to this
%% supervisor: a crash, a `kill' or a lost node shows here as the child's exit and
%% the supervisor restarts it.
%%
%% A worker whose node is not connected starts as `ignore': the child stays in the
%% supervisor without a process, so a node that is down (or unreachable) takes only
%% its own workers out of the pool, and the restarts it causes stay well within the
%% restart intensity. {@link restart_missing/1} (run by the manager on `nodeup' and
%% periodically) reconnects those nodes and restarts their children.
-module(beam_bridge_pool_sup).
-behaviour(supervisor).

-export([start_link/2, start_worker/6, restart_missing/1]).
-export([init/1]).

-define(DEFAULT_TIMEOUT, 5000).

%% @doc Start the workers' supervisor for the pool manager `Manager'.
-spec start_link(pid(), beam_bridge_pool:opts()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Manager, Opts) ->
    supervisor:start_link(?MODULE, {Manager, Opts}).

%% @private
init({Manager, #{nodes := Nodes, size := Size, actor := Actor} = Opts}) ->
    Args = maps:get(args, Opts, []),
    StartTimeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
    Children = [worker_spec(Manager, lists:nth(I rem length(Nodes) + 1, Nodes), I,
                            Actor, Args, StartTimeout, maps:get(shutdown, Opts, 5000))
                || I <- lists:seq(0, Size - 1)],
    Flags = #{strategy => one_for_one,
              intensity => maps:get(intensity, Opts, 2 * Size),
              period => maps:get(period, Opts, 5)},
    {ok, {Flags, Children}}.

worker_spec(Manager, Node, I, Actor, Args, StartTimeout, Shutdown) ->
    Id = {Node, I},
    #{id => Id,
      start => {?MODULE, start_worker, [Manager, Id, Node, Actor, Args, StartTimeout]},
      restart => permanent,
      shutdown => Shutdown,
      type => worker,
      modules => [beam_bridge]}.

%% @doc Start one worker (a child's start function). Returns `ignore' while its node
%% is not connected, so the child waits for {@link restart_missing/1}.
-spec start_worker(pid(), term(), node(), atom(), term(), timeout()) ->
          {ok, pid()} | ignore | {error, term()}.
start_worker(Manager, Id, Node, Actor, Args, StartTimeout) ->
    case lists:member(Node, nodes([visible, hidden])) of
        false ->
            ignore;
        true ->
            case beam_bridge:start_link(Node, Actor, Args,
                                        #{timeout => StartTimeout, connect_wait => 0}) of
                {ok, Pid} ->
                    beam_bridge_pool:worker_started(Manager, Id, Pid),
                    {ok, Pid};
                {error, noconnection} ->
                    ignore;
                Other ->
                    Other
            end
    end.

%% @doc Reconnect the nodes of children that have no process and restart those
%% children (`supervisor:restart_child/2'; a node still unreachable leaves them
%% waiting). Runs in a helper process of the pool manager.
-spec restart_missing(pid()) -> ok.
restart_missing(Sup) ->
    Missing = [Id || {{_Node, _I} = Id, undefined, _, _} <- supervisor:which_children(Sup)],
    Nodes = lists:usort([Node || {Node, _} <- Missing]),
    Up = [Node || Node <- Nodes, net_kernel:connect_node(Node) =:= true],
    _ = [supervisor:restart_child(Sup, Id) || {Node, _} = Id <- Missing, lists:member(Node, Up)],
    ok.
