#!/bin/sh
# Soak the gateway in front of the emulator with faults on (scripts/soak.py), niced so it can
# run beside other work. Usage: scripts/soak.sh [--seconds 1800] [--rate 2] [--bin PATH] ...
# Builds the binary first unless --bin is given; results go to stdout (tee them to a file).
set -eu
cd "$(dirname "$0")/.."
case " $* " in
  *" --bin "*) ;;
  *) cargo build -p imagegate >&2; set -- --bin target/debug/imagegate "$@" ;;
esac
exec nice -n 10 python3 scripts/soak.py "$@"
