%% @doc A supervisor child that runs a whole Python node as an OS process (a port).
%%
%% `start_link/1' starts `python -m bridge serve [Module] --name Name --stdin-watch'
%% through a port, waits until the node prints its ready line, connects to it and
%% returns `{ok, Pid}'. The process exits when the Python node dies (the port exits
%% or the node goes down), so an ordinary supervisor restarts the Python node. When
%% this process stops, it closes the port: the Python node sees its standard input
%% close and stops (its actors' `terminate' runs), and is killed by OS pid if it is
%% still there after `stop_timeout' milliseconds. No Python node outlives its owner.
%%
%% ```
%% ChildSpec = beam_bridge_node:child_spec(#{name => 'py@127.0.0.1',
%%                                           module => "/srv/app/actors.py"}),
%% '''
%%
%% Options: `name' (required, the Python node's name), `module' (Python module
%% name or file for `serve'), `python' (executable; default `$BEAM_BRIDGE_PYTHON'
%% or `python3'), `cookie' (default this node's cookie), `epmd_port', `extra_args'
%% (more `serve' arguments), `env' (list of `{Name, Value}'), `cd',
%% `start_timeout' (default 30000), `stop_timeout' (default 5000), `id', `log_to'
%% (default this node; `none' to disable).
%%
%% Logs: the Python node sends its log records of level WARNING and up, and its
%% actors' crash reports, to `log_to''s `logger' (through `logger_proxy', the way
%% remote BEAM nodes do), at the matching level, with metadata `node', `pid',
%% `registered_name', `class', `python_logger' and `domain' `[beam_bridge, python]'.
%% Its standard output and error are logged here at `debug' level.
-module(beam_bridge_node).
-behaviour(gen_server).

-export([start_link/1, child_spec/1, os_pid/1, node_name/1, owner/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-record(state, {port :: port(), name :: node(), os_pid :: integer(),
                stop_timeout :: non_neg_integer()}).

%% @doc Start the Python node and return once it is up and connected.
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(#{name := Name} = Opts) when is_atom(Name) ->
    gen_server:start_link(?MODULE, Opts, []).

%% @doc A child spec: a worker whose shutdown leaves time for the Python node to stop.
-spec child_spec(map()) -> supervisor:child_spec().
child_spec(#{name := Name} = Opts) ->
    #{id => maps:get(id, Opts, {python_node, Name}),
      start => {?MODULE, start_link, [Opts]},
      restart => maps:get(restart, Opts, permanent),
      shutdown => maps:get(stop_timeout, Opts, 5000) + 1000,
      type => worker,
      modules => [?MODULE]}.

%% @doc The OS pid of the Python node process.
-spec os_pid(pid()) -> integer().
os_pid(Server) -> gen_server:call(Server, os_pid).

%% @doc The Python node's name.
-spec node_name(pid()) -> node().
node_name(Server) -> gen_server:call(Server, node_name).

%% @doc The local process that owns (started and watches) the Python node `Node',
%% or `undefined'. {@link beam_bridge_proxy} uses it to order exits.
-spec owner(node()) -> pid() | undefined.
owner(Node) when is_atom(Node) ->
    whereis(owner_name(Node)).

%% A registered name per owned node. The atom is made once per Python node name.
owner_name(Node) ->
    list_to_atom("beam_bridge_node " ++ atom_to_list(Node)).

%% @private
init(#{name := Name} = Opts) ->
    process_flag(trap_exit, true),
    true = register(owner_name(Name), self()),
    Python = python_executable(Opts),
    Cookie = maps:get(cookie, Opts, erlang:get_cookie()),
    Module = case maps:get(module, Opts, undefined) of
                 undefined -> [];
                 M -> [to_list(M)]
             end,
    Args = ["-m", "bridge", "serve"] ++ Module ++
        ["--name", atom_to_list(Name), "--cookie", atom_to_list(Cookie), "--stdin-watch"] ++
        case maps:get(epmd_port, Opts, undefined) of
            undefined -> [];
            P -> ["--epmd-port", integer_to_list(P)]
        end ++
        case maps:get(log_to, Opts, node()) of
            none -> [];
            nonode@nohost -> [];
            LogNode -> ["--log-to", atom_to_list(LogNode)]
        end ++ [to_list(A) || A <- maps:get(extra_args, Opts, [])],
    PortOpts = [{args, Args}, exit_status, {line, 4096}, use_stdio, stderr_to_stdout, binary,
                {env, [{to_list(K), to_list(V)} || {K, V} <- maps:get(env, Opts, [])]}] ++
        case maps:get(cd, Opts, undefined) of
            undefined -> [];
            Dir -> [{cd, to_list(Dir)}]
        end,
    wait_name_free(Name, 3000),
    Port = open_port({spawn_executable, Python}, PortOpts),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Deadline = erlang:monotonic_time(millisecond) + maps:get(start_timeout, Opts, 30000),
    case wait_ready(Port, Name, Deadline, []) of
        ok ->
            case net_kernel:connect_node(Name) of
                true ->
                    erlang:monitor_node(Name, true),
                    {ok, #state{port = Port, name = Name, os_pid = OsPid,
                                stop_timeout = maps:get(stop_timeout, Opts, 5000)}};
                _ ->
                    stop_os_process(Port, OsPid, 2000),
                    {stop, {cannot_connect, Name}}
            end;
        {error, Reason} ->
            stop_os_process(Port, OsPid, 2000),
            {stop, Reason}
    end.

%% A killed predecessor's EPMD registration ends when its socket closes; give EPMD
%% a moment so the restarted node does not find its own name taken.
wait_name_free(Name, Left) when Left =< 0 ->
    _ = Name,
    ok;
wait_name_free(Name, Left) ->
    [Alive, Host] = string:split(atom_to_list(Name), "@"),
    case erl_epmd:port_please(Alive, Host, 1000) of
        {port, _, _} ->
            timer:sleep(50),
            wait_name_free(Name, Left - 50);
        _ ->
            ok
    end.

wait_ready(Port, Name, Deadline, Lines) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, Line}}} ->
            case binary:match(Line, <<" up (port ">>) of
                nomatch -> wait_ready(Port, Name, Deadline, [Line | Lines]);
                _ -> ok
            end;
        {Port, {data, {noeol, Part}}} ->
            wait_ready(Port, Name, Deadline, [Part | Lines]);
        {Port, {exit_status, Status}} ->
            {error, {python_node_failed, Status, lists:reverse(Lines)}}
    after Left ->
        {error, {python_node_start_timeout, lists:reverse(Lines)}}
    end.

%% @private
handle_call(os_pid, _From, #state{os_pid = OsPid} = State) ->
    {reply, OsPid, State};
handle_call(node_name, _From, #state{name = Name} = State) ->
    {reply, Name, State}.

%% @private
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
handle_info({Port, {data, {_, Line}}}, #state{port = Port, name = Name} = State) ->
    logger:debug("python node ~s: ~s", [Name, Line]),
    {noreply, State};
handle_info({Port, {exit_status, Status}}, #state{port = Port} = State) ->
    {stop, {python_node_exit, Status}, State#state{port = undefined}};
handle_info({nodedown, Name}, #state{name = Name} = State) ->
    {stop, {nodedown, Name}, State};
handle_info({'EXIT', Port, Reason}, #state{port = Port} = State) ->
    {stop, {python_node_port, Reason}, State#state{port = undefined}};
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
terminate(_Reason, #state{port = Port, os_pid = OsPid, stop_timeout = Timeout}) ->
    stop_os_process(Port, OsPid, Timeout).

stop_os_process(Port, OsPid, Timeout) ->
    case Port of
        undefined -> ok;
        _ -> catch port_close(Port)
    end,
    wait_os_exit(OsPid, Timeout).

wait_os_exit(OsPid, Timeout) when Timeout =< 0 ->
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    ok;
wait_os_exit(OsPid, Timeout) ->
    case os_process_alive(OsPid) of
        false -> ok;
        true ->
            timer:sleep(50),
            wait_os_exit(OsPid, Timeout - 50)
    end.

os_process_alive(OsPid) ->
    %% A zombie child of ours counts as gone.
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            case binary:split(Stat, <<") ">>) of
                [_, <<"Z", _/binary>>] -> false;
                _ -> true
            end;
        {error, _} ->
            os:cmd("kill -0 " ++ integer_to_list(OsPid) ++ " 2>/dev/null && echo yes") =:= "yes\n"
    end.

python_executable(Opts) ->
    Name = case maps:get(python, Opts, undefined) of
               undefined ->
                   case os:getenv("BEAM_BRIDGE_PYTHON") of
                       false -> "python3";
                       Env -> Env
                   end;
               P -> to_list(P)
           end,
    case filename:pathtype(Name) of
        absolute -> Name;
        _ ->
            case os:find_executable(Name) of
                false -> erlang:error({python_not_found, Name});
                Found -> Found
            end
    end.

to_list(X) when is_list(X) -> X;
to_list(X) when is_binary(X) -> binary_to_list(X);
to_list(X) when is_atom(X) -> atom_to_list(X);
to_list(X) when is_integer(X) -> integer_to_list(X).
