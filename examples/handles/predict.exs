# A model handle used from Elixir (start models.py first, then, after `rebar3 compile`):
#   elixir --name app@127.0.0.1 --cookie secret -pa _build/default/lib/beam_bridge/ebin \
#     examples/handles/predict.exs [py@127.0.0.1]
py = String.to_atom(List.first(System.argv()) || "py@127.0.0.1")
models = {:py_models, py}

# Fit y = 2x^2 + 1 in Python; the model stays there, we hold a handle.
xs = Enum.map(0..20, &(&1 / 2))
ys = Enum.map(xs, &(2 * &1 * &1 + 1))
{:ok, model} = BeamBridge.call(models, {:fit, xs, ys, 2})
{:"$py_handle", ref, type} = model
IO.puts("handle from #{node(ref)}: a #{type}")

predictions = for x <- 1..1000, do: BeamBridge.call(models, {:predict, model, x / 100})
IO.puts("1000 predictions, f(10.0) = #{Float.round(List.last(predictions), 6)}")

# A numpy array reply: Nx.from_binary(data, type) |> Nx.reshape(shape) rebuilds it.
{:"$nd", {:f, 64} = nx_type, {3} = shape, data} = BeamBridge.call(models, {:predict_many, model, [0.0, 1.0, 2.0]})
values = for <<x::float-64-little <- data>>, do: Float.round(x, 6)
IO.puts("predict_many: type #{inspect(nx_type)}, shape #{inspect(shape)}, values #{inspect(values)}")

IO.puts("handles on #{py}: #{BeamBridge.handle_count(py)}")
:ok = BeamBridge.release(model)
IO.puts("released; handles on #{py}: #{BeamBridge.handle_count(py)}")
{:error, {:stale_handle, ^model}} = BeamBridge.call(models, {:predict, model, 1.0})
IO.puts("predict after release: {:error, {:stale_handle, handle}}")
