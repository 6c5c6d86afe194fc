%% @doc The Erlang node of the Docker demo cluster (docker/compose.yaml).
%%
%% `demo_node:start()' (run by `erl -eval') waits for the Python node, then starts a
%% supervisor (`beam_bridge_sup', registered as `demo_sup') whose child is a Python
%% `Counter' actor living on the Python node, started with `beam_bridge:child_spec/1'.
%% When the supervisor gives up (the Python node stayed away longer than its restart
%% intensity allows) the node halts with status 1, and Docker's restart policy starts
%% it again; the supervisor is never silently gone.
%%
%% `demo_node:health()' is what the container's healthcheck calls through `erl_call':
%% `ok' when the Python child is alive and answers `gen_server:call(Pid, get)'.
-module(demo_node).

-export([start/0, health/0, python_node/0]).

-define(WAIT_PYTHON_MS, 60000).

%% @doc The Python node's name: `$PY_NODE', default `py@python-node.beam.internal'.
-spec python_node() -> node().
python_node() ->
    list_to_atom(os:getenv("PY_NODE", "py@python-node.beam.internal")).

%% @doc Start the demo supervision tree under a process that owns it.
-spec start() -> pid().
start() ->
    spawn(fun owner/0).

owner() ->
    process_flag(trap_exit, true),
    PyNode = python_node(),
    ok = wait_for(PyNode, erlang:monotonic_time(millisecond) + ?WAIT_PYTHON_MS),
    Children = [beam_bridge:child_spec(#{id => py_counter, node => PyNode,
                                         actor => counter, args => 0})],
    Flags = #{strategy => one_for_one, intensity => 5, period => 10},
    case beam_bridge_sup:start_link({local, demo_sup}, Flags, Children) of
        {ok, Sup} ->
            logger:notice("demo_sup started: Python counter on ~s", [PyNode]),
            receive
                {'EXIT', Sup, Reason} ->
                    fail("demo_sup stopped: ~p", [Reason])
            end;
        Error ->
            fail("cannot start demo_sup: ~p", [Error])
    end.

wait_for(PyNode, Deadline) ->
    case net_adm:ping(PyNode) of
        pong -> ok;
        pang ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    fail("Python node ~s unreachable", [PyNode]);
                false ->
                    timer:sleep(500),
                    wait_for(PyNode, Deadline)
            end
    end.

%% Log why, let the log reach standard output, and stop the node (status 1).
-spec fail(io:format(), [term()]) -> no_return().
fail(Format, Args) ->
    logger:error(Format, Args),
    _ = catch logger_std_h:filesync(default),
    erlang:halt(1).

%% @doc `ok' when the supervised Python counter answers; an error tuple otherwise.
-spec health() -> ok | {error, term()}.
health() ->
    case whereis(demo_sup) of
        undefined -> {error, no_supervisor};
        Sup ->
            case [P || {py_counter, P, _, _} <- supervisor:which_children(Sup), is_pid(P)] of
                [Pid] ->
                    case catch gen_server:call(Pid, get, 2000) of
                        N when is_integer(N) -> ok;
                        Other -> {error, Other}
                    end;
                [] -> {error, no_python_child}
            end
    end.
