defmodule ElixirApp.MixProject do
  use Mix.Project

  # beam_bridge is a rebar3 application at the root of the beam-bridge repository;
  # BEAM_BRIDGE_PATH points elsewhere when this project is copied out of the repository.
  def project do
    [
      app: :elixir_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: [{:beam_bridge, path: System.get_env("BEAM_BRIDGE_PATH", "../..")}]
    ]
  end

  def application, do: [extra_applications: [:logger]]
end
