# An Elixir supervisor with Python children (the node of actors.py):
#   rebar3 compile
#   elixir --name app@127.0.0.1 --cookie secret -pa _build/default/lib/beam_bridge/ebin \
#     examples/supervise/supervise.exs py@127.0.0.1
py = String.to_atom(List.first(System.argv()) || "py@127.0.0.1")

children = [
  {PyChild, node: py, actor: :counter, args: 10},
  {BeamBridge, id: :second, node: py, actor: :counter, args: 20}
]

{:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one)

for {id, pid, :worker, _} <- Enum.sort(Supervisor.which_children(sup)) do
  IO.puts("#{id} runs on #{node(pid)}: get -> #{BeamBridge.call(pid, :get)}")
end

:ok = Supervisor.stop(sup)
IO.puts("supervisor stopped")
