#!/usr/bin/env bash
# Conformance run, end to end from a fresh clone: builds pvf (release) and the harness with
# Polkadot's PVF host, then runs every case in cases.toml through both hosts in secure mode.
#
#   conformance/run.sh [--markdown FILE] [CASE...]
#   PVF_BIN=/other/checkout/target/release/pvf conformance/run.sh    # compare another build
#   PVF_CORPUS=DIR                                                    # the corpus runtimes
#
# Polkadot's crates take about 20 minutes to build cold on 2 cores. Exit status: 0 when every
# difference is documented and non-voting, 1 when a case differs, 2 on a harness error.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

if ! command -v protoc >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq protobuf-compiler
fi

if [ -z "${PVF_BIN:-}" ]; then
    # The whole workspace, as CI builds it: selecting packages would change feature unification
    # and rebuild dependencies.
    (cd "$repo" && cargo build --release --workspace)
    export PVF_BIN="$repo/target/release/pvf"
fi

# Polkadot's crates are heavy: build them at low priority, in a target dir of their own.
(cd "$here" && nice -n 10 cargo build --release --locked)
exec "$here/target/release/pvf-conformance" "$@"
