%% @doc Talk to Python nodes (beam-bridge) from Elixir with the names Elixir uses.
%%
%% A Python node is an ordinary (hidden) node of the cluster, so `GenServer.call/3',
%% `:erpc.call/4' and `Node.ping/1' already work on it. This module gathers them with
%% their defaults, and is a child spec for Python actors under an Elixir supervisor:
%%
%% ```
%% py = :"py@127.0.0.1"
%% :pong = BeamBridge.ping(py)
%% :ok = BeamBridge.cast({:py_counter, py}, 5)          # a Python GenServer named py_counter
%% 5 = BeamBridge.call({:py_counter, py}, :get)
%% 3 = BeamBridge.rpc(py, :pymath, :add, [1, 2])       # node.allow_rpc("pymath", "add", ...)
%%
%% children = [{BeamBridge, node: py, actor: :counter, args: 0}]   # node.allow_spawn("counter", Counter)
%% Supervisor.start_link(children, strategy: :one_for_one)
%% '''
%%
%% `{BeamBridge, Opts}' and `{PyChild, Opts}' are the same child: see
%% {@link child_spec/1} and `beam_bridge:child_spec/1' for the options. Written in
%% Erlang (as `PyChild') so that it needs no Elixir compiler and loads on every OTP.
-module('Elixir.BeamBridge').

-export([call/2, call/3, cast/2, rpc/4, rpc/5, ping/1, child_spec/1, start_link/1]).
-export([acquire/1, release/1, 'handle?'/1, handle_count/1]).

-type server() :: pid() | atom() | {atom(), node()} | {global, term()} | {via, module(), term()}.
-export_type([server/0]).

-define(CALL_TIMEOUT, 5000).

%% @doc `GenServer.call(Server, Request)': a call with the default timeout of 5000 ms.
%% `Server' is a pid or `{Name, Node}', for example `{:py_counter, :"py@127.0.0.1"}'.
-spec call(server(), term()) -> term().
call(Server, Request) ->
    call(Server, Request, ?CALL_TIMEOUT).

%% @doc `GenServer.call(Server, Request, Timeout)'. Exits as `gen_server:call/3' does
%% when the server is gone (`noproc'), its node is down (`nodedown'), the timeout
%% passes (`timeout') or the server crashes while handling the call (its reason); the
%% exit reason is `{Reason, {gen_server, call, [Server, Request, Timeout]}}'.
-spec call(server(), term(), timeout()) -> term().
call(Server, Request, Timeout) ->
    gen_server:call(Server, Request, Timeout).

%% @doc `GenServer.cast(Server, Request)': send the request and return `ok' at once,
%% whether or not the server exists (as OTP does).
-spec cast(server(), term()) -> ok.
cast(Server, Request) ->
    gen_server:cast(Server, Request).

%% @doc `:erpc.call(Node, Module, Function, Args)' with no timeout: run a function the
%% Python node allow-listed (`node.allow_rpc("pymath", "add", fun)') and return its
%% result. A function that is not allow-listed raises `undef', as on a BEAM node; a
%% Python exception raises `{exception, {python_exception, Type, Message, Traceback},
%% Stack}' in the caller, as `erpc' reports an exception.
-spec rpc(node(), atom(), atom(), [term()]) -> term().
rpc(Node, Module, Function, Args) ->
    erpc:call(Node, Module, Function, Args).

%% @doc Like {@link rpc/4} with a timeout in milliseconds (`{erpc, timeout}' is raised
%% when it passes).
-spec rpc(node(), atom(), atom(), [term()], timeout()) -> term().
rpc(Node, Module, Function, Args, Timeout) ->
    erpc:call(Node, Module, Function, Args, Timeout).

%% @doc `Node.ping(Node)': `pong' when the node answers, else `pang'.
-spec ping(node()) -> pong | pang.
ping(Node) ->
    net_adm:ping(Node).

%% @doc The child spec for `{BeamBridge, Opts}' in an Elixir supervisor: an
%% allow-listed Python actor, started with `init(Args)' on the Python node and linked
%% to a supervisor of this node. `Opts' is a keyword list or a map: `node' and
%% `actor' are required; `args' (default `[]', given to `init' as it is: `args: 0'
%% gives `init(0)'), `id' (default the actor), `restart' (default `permanent'),
%% `shutdown' (default 5000), `timeout' (start timeout, default 5000).
-spec child_spec([{atom(), term()}] | map()) -> supervisor:child_spec().
child_spec(Opts) ->
    'Elixir.PyChild':child_spec(Opts).

%% @doc Start the Python actor `Opts' describes (see {@link child_spec/1}), linked to
%% the caller; returns `{ok, Pid}' once its `init' has run, `ignore', or
%% `{error, Reason}', as `GenServer.start_link/3' does.
-spec start_link([{atom(), term()}] | map()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Opts) ->
    'Elixir.PyChild':start_link(Opts).

%% @doc Keep a Python object handle alive from the calling process (an Elixir
%% process other than the caller the handle was made for). A handle is the tuple
%% `{:"$py_handle", ref, type_name}'; see {@link release/1}. Returns `:ok' or
%% `{:error, {:stale_handle, handle}}'.
-spec acquire(beam_bridge:handle()) -> ok | {error, term()}.
acquire(Handle) ->
    beam_bridge:acquire(Handle).

%% @doc Release a Python object handle held by the calling process; the object is
%% freed on the Python node when no process holds it any more (a holder that dies
%% releases it too). Returns `:ok', `{:error, :not_holder}' or
%% `{:error, {:stale_handle, handle}}'.
%%
%% ```
%% {:ok, model} = BeamBridge.call({:py_models, py}, {:fit, xs, ys, 2})
%% y = BeamBridge.call({:py_models, py}, {:predict, model, 1.5})
%% :ok = BeamBridge.release(model)
%% '''
-spec release(beam_bridge:handle()) -> ok | {error, term()}.
release(Handle) ->
    beam_bridge:release(Handle).

%% @doc Whether a term is a Python object handle `{:"$py_handle", ref, type_name}'.
-spec 'handle?'(term()) -> boolean().
'handle?'(Term) ->
    beam_bridge:is_handle(Term).

%% @doc The number of live handles on a Python node.
-spec handle_count(node()) -> non_neg_integer().
handle_count(Node) ->
    beam_bridge:handle_count(Node).
