# The Elixir node of the Docker demo cluster (docker/compose.yaml), run as a mix-less
# script: `elixir --name ex@elixir-node.beam.internal -pa <beam_bridge ebin> demo.exs`.
#
# A supervisor with two children:
#   * Demo.Counter, an Elixir GenServer registered as Demo.Counter, which the Python
#     node can call: `python -m bridge call ex@elixir-node.beam.internal Elixir.Demo.Counter get`;
#   * a Python Counter actor on the Python node, started through `PyChild` (the
#     beam_bridge application's Elixir child spec) and restarted by this supervisor.
# Demo.Ticker adds 1 to both counters every few seconds and logs both values.

defmodule Demo.Counter do
  use GenServer

  def start_link(start), do: GenServer.start_link(__MODULE__, start, name: __MODULE__)

  @impl true
  def init(start), do: {:ok, start}

  @impl true
  def handle_call(:get, _from, n), do: {:reply, n, n}
  def handle_call({:add, by}, _from, n), do: {:reply, n + by, n + by}

  @impl true
  def handle_cast({:add, by}, n), do: {:noreply, n + by}
end

defmodule Demo do
  @moduledoc "Names and the healthcheck of the Elixir demo node."

  def python_node, do: String.to_atom(System.get_env("PY_NODE", "py@python-node.beam.internal"))

  @doc "The pid of the Python counter supervised here, or nil."
  def python_counter do
    Demo.Supervisor
    |> Supervisor.which_children()
    |> Enum.find_value(fn
      {:py_counter, pid, _, _} when is_pid(pid) -> pid
      _ -> nil
    end)
  end

  @doc "`:ok` when both counters answer (called by the healthcheck through erl_call)."
  def health do
    with pid when is_pid(pid) <- python_counter(),
         n when is_integer(n) <- GenServer.call(pid, :get, 2_000),
         m when is_integer(m) <- GenServer.call(Demo.Counter, :get, 2_000) do
      :ok
    else
      other -> {:error, other}
    end
  catch
    :exit, reason -> {:error, reason}
  end

  @doc "Wait until the Python node answers a ping (compose also waits for its healthcheck)."
  def wait_for_python(tries \\ 120) do
    case Node.ping(python_node()) do
      :pong -> :ok
      :pang when tries > 0 -> Process.sleep(500); wait_for_python(tries - 1)
      :pang -> raise "Python node #{python_node()} unreachable"
    end
  end
end

defmodule Demo.Ticker do
  use GenServer
  require Logger

  def start_link(interval), do: GenServer.start_link(__MODULE__, interval, name: __MODULE__)

  @impl true
  def init(interval) do
    Process.send_after(self(), :tick, interval)
    {:ok, interval}
  end

  @impl true
  def handle_info(:tick, interval) do
    elixir_n = GenServer.call(Demo.Counter, {:add, 1})

    python_n =
      case Demo.python_counter() do
        pid when is_pid(pid) -> GenServer.call(pid, {:add, 1})
        nil -> :restarting
      end

    Logger.info("Elixir counter #{elixir_n}, Python counter #{inspect(python_n)}")
    Process.send_after(self(), :tick, interval)
    {:noreply, interval}
  end
end

Demo.wait_for_python()

children = [
  {Demo.Counter, 0},
  {PyChild, id: :py_counter, node: Demo.python_node(), actor: :counter, args: 0},
  {Demo.Ticker, 5_000}
]

{:ok, _sup} =
  Supervisor.start_link(children, strategy: :one_for_one, max_restarts: 5, max_seconds: 10,
    name: Demo.Supervisor)

IO.puts("node #{Node.self()} up: Demo.Supervisor with a Python counter on #{Demo.python_node()}")

# The script's process owns the supervisor: when the supervisor gives up, stop the VM
# (non-zero) so Docker's restart policy starts a fresh node.
Process.flag(:trap_exit, true)

receive do
  {:EXIT, _pid, reason} ->
    IO.puts(:stderr, "Demo.Supervisor stopped: #{inspect(reason)}")
    System.halt(1)
end
