#!/bin/sh
# Installs the Debian 12 packages crisp needs to build, run and be tested.
# Usage: contrib/install-deps.sh [--test] [--bench]
set -eu

build="build-essential autoconf automake libtool pkg-config
  libglib2.0-dev libjson-glib-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libgrpc-dev libostree-dev libcurl4-openssl-dev libseccomp-dev zlib1g-dev
  libarchive-dev libzstd-dev libssl-dev"
run="runc containernetworking-plugins iproute2 iptables"
test="python3-grpcio python3-protobuf python3-pytest docker-registry busybox-static
  skopeo umoci apache2-utils python3-websocket openssl util-linux procps clang libclang-rt-14-dev
  groff-base criu"
# Only for the benchmarks in bench/ (compared against, never used by crisp).
bench="conmon"

pkgs="$build $run"
for arg in "$@"; do
  case "$arg" in
    --test) pkgs="$pkgs $test" ;;
    --bench) pkgs="$pkgs $bench" ;;
  esac
done

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
