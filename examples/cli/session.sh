#!/bin/sh
# The command line against an Erlang node started as
#   erl -name app@127.0.0.1 -setcookie secret
# Run: sh examples/cli/session.sh [app@127.0.0.1]
set -e
APP=${1:-app@127.0.0.1}
PY=${PYTHON:-python3}

$PY -m bridge --cookie secret ping "$APP"
$PY -m bridge --cookie secret rpc "$APP" erlang node
$PY -m bridge --cookie secret rpc "$APP" string uppercase '"hello"'
$PY -m bridge --cookie secret --strings rpc "$APP" string uppercase '"hello"'
$PY -m bridge --cookie secret --strings call "$APP" application_controller which_applications
$PY -m bridge --cookie secret ping nobody@127.0.0.1 || echo "exit code $?"
$PY -m bridge names
