#!/bin/bash
# The Python node of the demo cluster.
#
# 1. The cookie: the compose secret becomes ~/.erlang.cookie (install-cookie), which
#    `python -m bridge` reads when neither --cookie nor $BEAM_BRIDGE_COOKIE is set.
# 2. EPMD: this container has no Erlang, so it runs the project's own EPMD
#    (`python -m bridge epmd`) on all interfaces, as BEAM's epmd does: the Erlang and
#    Elixir nodes look py@... up on this host's port 4369. (`serve --embedded-epmd`
#    would start the same server, but on 127.0.0.1 only, where no other container can
#    reach it.)
# 3. The node: `python -m bridge serve MODULE`, the command the interop tests run,
#    hosting the actors the Erlang and Elixir supervisors start (ALLOW_SPAWN).
#
# The container stops when either process stops (Docker's restart policy then starts a
# fresh one); SIGTERM/SIGINT stop the node cleanly (actors' terminate runs), then EPMD.
set -euo pipefail

NODE_NAME="${NODE_NAME:-py@python-node.beam.internal}"
DIST_PORT="${DIST_PORT:-9100}"
EPMD_PORT="${ERL_EPMD_PORT:-4369}"

if [ -n "${BEAM_BRIDGE_COOKIE:-}" ]; then
    echo "entrypoint: BEAM_BRIDGE_COOKIE is set; this image takes the cookie from the compose secret only" >&2
    exit 78
fi
install-cookie

python -m bridge epmd --host 0.0.0.0 --port "$EPMD_PORT" &
epmd_pid=$!

stop() {
    trap - TERM INT
    [ -n "${serve_pid:-}" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" || true
    kill -TERM "$epmd_pid" 2>/dev/null && wait "$epmd_pid" || true
    exit 0
}
trap stop TERM INT

# Register only once EPMD answers (on the address the other containers use).
for _ in $(seq 1 50); do
    python -m bridge names 127.0.0.1 >/dev/null 2>&1 && break
    kill -0 "$epmd_pid" 2>/dev/null || { echo "entrypoint: EPMD failed to start" >&2; exit 69; }
    sleep 0.2
done

python -m bridge serve /app/actors.py --name "$NODE_NAME" --listen-port "$DIST_PORT" &
serve_pid=$!

# Whichever stops first (node or EPMD) takes the container with it.
set +e
wait -n "$serve_pid" "$epmd_pid"
status=$?
kill -TERM "$serve_pid" "$epmd_pid" 2>/dev/null
wait
exit "$status"
