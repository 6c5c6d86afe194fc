%% @doc A supervisor built from data, like Elixir's `Supervisor.start_link(Children, Opts)'.
%%
%% ```
%% {ok, Sup} = beam_bridge_sup:start_link(#{strategy => rest_for_one},
%%     [beam_bridge_node:child_spec(#{name => 'py@127.0.0.1', module => "actors.py"}),
%%      beam_bridge:child_spec(#{node => 'py@127.0.0.1', actor => counter, args => 0})]).
%% '''
%%
%% Flags default to OTP's: `one_for_one', intensity 1, period 5.
-module(beam_bridge_sup).
-behaviour(supervisor).

-export([start_link/2, start_link/3]).
-export([init/1]).

%% @doc Start a linked supervisor with these flags and child specs.
-spec start_link(supervisor:sup_flags(), [supervisor:child_spec()]) ->
          {ok, pid()} | ignore | {error, term()}.
start_link(Flags, Children) ->
    supervisor:start_link(?MODULE, {Flags, Children}).

%% @doc As {@link start_link/2}, registered under `Name' (`{local, N}' etc.).
-spec start_link(supervisor:sup_name(), supervisor:sup_flags(), [supervisor:child_spec()]) ->
          {ok, pid()} | ignore | {error, term()}.
start_link(Name, Flags, Children) ->
    supervisor:start_link(Name, ?MODULE, {Flags, Children}).

%% @private
init({Flags, Children}) ->
    {ok, {Flags, Children}}.
