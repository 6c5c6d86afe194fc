#!/bin/sh
# Install the cluster cookie as ~/.erlang.cookie (mode 0400), the one place every node
# in this cluster reads it from: erl/elixir/erl_call read it there (BEAM's rule) and
# `python -m bridge` falls back to it when neither --cookie nor $BEAM_BRIDGE_COOKIE is
# given. The source is the compose secret `erlang_cookie`, mounted by Docker at
# /run/secrets/erlang_cookie (override with $COOKIE_SECRET_FILE).
set -eu
src="${COOKIE_SECRET_FILE:-/run/secrets/erlang_cookie}"
dest="${HOME:?HOME is not set}/.erlang.cookie"
if [ ! -r "$src" ]; then
    echo "install-cookie: cannot read the cookie secret $src (is the compose secret 'erlang_cookie' mounted and readable by uid $(id -u)?)" >&2
    exit 78
fi
cookie="$(head -n 1 "$src" | tr -d '\r' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
if [ -z "$cookie" ]; then
    echo "install-cookie: the cookie secret $src is empty" >&2
    exit 78
fi
umask 077
tmp="$(mktemp "$HOME/.erlang.cookie.XXXXXX")"
printf '%s' "$cookie" > "$tmp"
chmod 0400 "$tmp"
mv -f "$tmp" "$dest"
