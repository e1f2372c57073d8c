#!/usr/bin/env bash
# The benchmark's compiled load generators, from Debian's packages: wrk (REST, Lua bodies) and
# h2load from nghttp2-client (gRPC: HTTP/2 POSTs of a length-prefixed protobuf body); perf from
# linux-perf (the gateway's CPU by layer: bench/cpu_layers.py); valgrind (instructions per
# request: bench/instructions.py).
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v perf >/dev/null || missing+=(linux-perf)
command -v callgrind_control >/dev/null || missing+=(valgrind)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "bench: installing ${missing[*]} from Debian's packages"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
