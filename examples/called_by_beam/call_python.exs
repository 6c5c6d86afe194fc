# Call the Python node of counter.py from Elixir:
#   elixir --name app@127.0.0.1 --cookie secret examples/called_by_beam/call_python.exs [py@127.0.0.1]
py = String.to_atom(List.first(System.argv()) || "py@127.0.0.1")

IO.puts("ping: #{inspect(Node.ping(py))}")
:ok = GenServer.cast({:py_counter, py}, 5)
IO.puts("GenServer.call(py_counter, :get): #{inspect(GenServer.call({:py_counter, py}, :get))}")
IO.puts(":rpc.call(pymath, add, [1, 2]): #{inspect(:rpc.call(py, :pymath, :add, [1, 2]))}")

try do
  :erpc.call(py, :pymath, :nope, [])
rescue
  e in ErlangError -> IO.puts(":erpc.call(pymath, nope, []) raised: #{inspect(elem(e.original, 1))}")
end

IO.puts("hidden nodes seen from Elixir: #{inspect(Node.list(:hidden))}")
