#!/bin/sh
# The Erlang node of the demo cluster: app@erlang-node.beam.internal (long name), with
# the beam_bridge application on its code path and demo_node's supervision tree.
# The cookie is ~/.erlang.cookie, installed from the compose secret; erl reads it there
# (no -setcookie: the cookie never appears on a command line). erl starts its own
# epmd (listening on all interfaces) as usual.
set -eu
install-cookie
exec erl -name "${NODE_NAME:-app@erlang-node.beam.internal}" \
    -noinput \
    -pa /opt/beam_bridge/lib/beam_bridge/ebin /opt/demo/ebin \
    -kernel inet_dist_listen_min "${DIST_PORT:-9100}" inet_dist_listen_max "${DIST_PORT:-9100}" \
    -eval 'demo_node:start()'
