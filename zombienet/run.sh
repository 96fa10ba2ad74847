#!/usr/bin/env bash
# Runs the zombienet network tests (NNNN-*.zndsl, or the ones given) with the native
# provider, one network at a time, against pvf-test-validator nodes. Checks that no process of
# a network outlives its teardown, and prints `N passed, N failed` last.
#
#   zombienet/run.sh [TEST.zndsl ...]
#
# Environment:
#   PVF_CORPUS_DIR         the corpus runtimes (default: ../shared/corpus beside the repo)
#   PVF_ZOMBIENET_TIMEOUT  seconds one network may take, launch to teardown (default: 600)
#   PVF_ZOMBIENET_KEEP=1   keep the work dir (node logs, zombienet output) even when all pass
#   CARGO_TARGET_DIR       honoured, as cargo does
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
target_dir=${CARGO_TARGET_DIR:-$root/target}
timeout_s=${PVF_ZOMBIENET_TIMEOUT:-600}

if [ "$#" -gt 0 ]; then
    tests=()
    for t in "$@"; do tests+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")"); done
else
    tests=("$here"/[0-9][0-9][0-9][0-9]-*.zndsl)
fi

echo "== build the test validator and the workers"
cargo build --release --manifest-path "$root/Cargo.toml" \
    -p pvf-test-validator -p pvf-prepare-worker -p pvf-execute-worker

echo "== install zombienet from the lockfile (npm ci)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
zombienet="$here/node_modules/.bin/zombienet"

# The network configs name these; zombienet renders an unset variable as an empty string and
# would then start `polkadot`, so check them here.
export PVF_TEST_VALIDATOR="$target_dir/release/pvf-test-validator"
export PVF_CORPUS_DIR=${PVF_CORPUS_DIR:-$root/../shared/corpus}
for bin in pvf-test-validator pvf-prepare-worker pvf-execute-worker; do
    [ -x "$target_dir/release/$bin" ] || { echo "error: $target_dir/release/$bin missing" >&2; exit 2; }
done
if ! compgen -G "$PVF_CORPUS_DIR/*.code" >/dev/null; then
    echo "error: no corpus runtimes (*.code) in $PVF_CORPUS_DIR; set PVF_CORPUS_DIR" >&2
    exit 2
fi
PVF_CORPUS_DIR=$(cd "$PVF_CORPUS_DIR" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/pvf-zombienet.XXXXXX")
session=""
# A failed launch, a timeout or an interrupt must leave nothing running: kill the network's
# whole session (its process group) on the way out.
kill_session() {
    if [ -n "$session" ]; then
        kill -KILL -- "-$session" 2>/dev/null || true
        session=""
    fi
}
trap kill_session EXIT
trap 'kill_session; exit 130' INT TERM

# Processes left from a network: any in its session, or any whose command line names its
# dir (nodes get their base path there, workers their worker dir). The dir is passed through
# the environment so that awk's own command line does not match it.
leftovers() {
    ps -eo pid=,sid=,args= |
        SID="$1" DIR="$2" awk '$2 == ENVIRON["SID"] || index($0, ENVIRON["DIR"]) { print }'
}

passed=0
failed=0
for test in "${tests[@]}"; do
    name=$(basename "$test" .zndsl)
    dir="$work/$name"
    out="$work/$name.out"
    echo "== $name"
    start=$SECONDS
    # setsid in a non-interactive shell does not fork (a background job is not a group
    # leader), so $! is the session id of zombienet and everything it starts. No stdin: a
    # prompt would wait forever; --dir names a fresh dir, so zombienet does not ask.
    setsid "$zombienet" test --provider native --logType text --dir "$dir" "$test" \
        </dev/null >"$out" 2>&1 &
    session=$!
    while kill -0 "$session" 2>/dev/null && ((SECONDS - start < timeout_s)); do
        sleep 1
    done
    timed_out=0
    if kill -0 "$session" 2>/dev/null; then
        timed_out=1
        kill -KILL -- "-$session" 2>/dev/null || true
    fi
    rc=0
    wait "$session" || rc=$?
    # Teardown SIGKILLs the nodes; their workers follow on the parent-death signal, which
    # can take a moment on a loaded machine.
    left=""
    for _ in $(seq 20); do
        left=$(leftovers "$session" "$dir")
        [ -z "$left" ] && break
        sleep 0.5
    done
    grep -aE '✅|❌|Result: ' "$out" || true
    verdict=ok
    if [ "$timed_out" = 1 ]; then
        verdict="timed out after ${timeout_s}s"
    elif [ "$rc" != 0 ]; then
        verdict="zombienet exited with $rc"
    fi
    if [ -n "$left" ]; then
        echo "processes survived the teardown:"
        echo "$left"
        kill_session
        echo "$left" | awk '{ print $1 }' | xargs -r kill -KILL 2>/dev/null || true
        [ "$verdict" = ok ] && verdict="processes survived the teardown"
    fi
    session=""
    if [ "$verdict" = ok ]; then
        passed=$((passed + 1))
        echo "-- $name: passed in $((SECONDS - start))s"
    else
        failed=$((failed + 1))
        echo "-- last lines of $out:"
        tail -n 60 "$out"
        echo "-- $name: FAILED ($verdict) in $((SECONDS - start))s; node logs in $dir"
    fi
done

if [ "$failed" = 0 ] && [ "${PVF_ZOMBIENET_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    echo "work dir kept: $work"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
