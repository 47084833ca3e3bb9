#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS seconds each (default 60), starting from the seed
# inputs in seeds/<target>/ (copied into the gitignored corpus/<target>/ first).
# The dictionary sse.dict holds the format's tokens.
# Installs cargo-fuzz if it is missing; needs a nightly toolchain. Exits non-zero on a crash:
# the crashing input is left in artifacts/<target>/.
set -euo pipefail

SECONDS_EACH="${1:-60}"
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

status=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    if [ -d "seeds/$target" ]; then
        cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    fi
    echo "=== fuzzing $target for ${SECONDS_EACH}s"
    if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -dict=sse.dict -print_final_stats=1; then
        echo "!!! $target crashed: see artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
