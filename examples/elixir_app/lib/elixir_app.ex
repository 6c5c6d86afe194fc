defmodule ElixirApp do
  @moduledoc """
  An Elixir application that supervises a Python actor and calls it.

  Start the Python node (`python -m bridge --name py@127.0.0.1 --cookie secret serve
  examples/supervise/actors.py`), then:

      MIX_REBAR3=$(command -v rebar3) mix compile
      elixir --name app@127.0.0.1 --cookie secret -S mix run -e 'ElixirApp.main(:"py@127.0.0.1")'
  """

  @doc "The supervision tree: one Python counter started with `init(10)`."
  def start_link(py_node) do
    Supervisor.start_link([{PyChild, node: py_node, actor: :counter, args: 10}],
      strategy: :one_for_one, name: ElixirApp.Supervisor)
  end

  @doc "Start the tree, use the Python counter, show its docs, stop."
  def main(py_node) do
    {:ok, sup} = start_link(py_node)
    [{:counter, pid, :worker, _}] = Supervisor.which_children(sup)
    :ok = BeamBridge.cast(pid, 5)
    IO.puts("counter on #{node(pid)}: #{BeamBridge.call(pid, :get)}")
    IO.puts("ping: #{inspect(BeamBridge.ping(py_node))}")
    not_listed = catch_error(fn -> BeamBridge.rpc(py_node, :pymath, :add, [1, 2]) end)
    IO.puts("rpc of a function actors.py does not allow-list raises #{inspect(not_listed)}")
    {:docs_v1, _, :erlang, _, %{"en" => _}, _, _} = Code.fetch_docs(PyChild)
    IO.puts("docs of PyChild and BeamBridge are available in IEx (h PyChild)")
    :ok = Supervisor.stop(sup)
  end

  defp catch_error(fun) do
    fun.()
  rescue
    e in ErlangError -> elem(e.original, 1)
  end
end
