#!/bin/sh
# The Elixir node of the demo cluster: ex@elixir-node.beam.internal (long name), running
# demo.exs with the beam_bridge application (for PyChild) on its code path.
# The cookie is ~/.erlang.cookie, installed from the compose secret; the VM reads it
# there (no --cookie: the cookie never appears on a command line). The VM starts its
# own epmd as usual.
set -eu
install-cookie
exec elixir --name "${NODE_NAME:-ex@elixir-node.beam.internal}" \
    --erl "-kernel inet_dist_listen_min ${DIST_PORT:-9100} inet_dist_listen_max ${DIST_PORT:-9100}" \
    -pa /opt/beam_bridge/lib/beam_bridge/ebin \
    /opt/demo/demo.exs
