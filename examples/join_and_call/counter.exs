# An Elixir node with a GenServer for the Python client to call:
#   elixir --name app@127.0.0.1 --cookie secret examples/join_and_call/counter.exs
defmodule MyApp.Counter do
  use GenServer

  def start_link(n), do: GenServer.start_link(__MODULE__, n, name: __MODULE__)

  @impl true
  def init(n), do: {:ok, n}

  @impl true
  def handle_call(:get, _from, n), do: {:reply, n, n}
  def handle_call({:add, k}, _from, n), do: {:reply, n + k, n + k}

  @impl true
  def handle_info({:log, text}, n) when is_binary(text) do
    IO.puts("MyApp.Counter got a message from Python: #{text}")
    {:noreply, n}
  end
end

{:ok, _} = Supervisor.start_link([{MyApp.Counter, 41}], strategy: :one_for_one)
IO.puts("#{node()} is up: MyApp.Counter is registered")
# Stay up until standard input closes (Ctrl-D), then stop.
IO.read(:stdio, :eof)
