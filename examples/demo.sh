#!/usr/bin/env bash
# The main job, end to end, on a local default store (no server):
#   1. "CI" builds the sample workspace (fixtures/sample-ws) as a git repo and
#      runs `cargo seed publish` with no --store: the per-user default store;
#   2. a "developer" clones it at another absolute path, runs `cargo seed`,
#      then `cargo build -v`: cargo must report every unit Fresh;
#   3. a developer who edited a member before seeding: cargo must compile
#      exactly that member and the one that depends on it, and rustc must
#      reuse the relocated incremental state (object files it links from
#      the seeded sessions instead of compiling them).
# Both sides compile through cargo-seed's rustc wrapper, the recommended
# setup (`cargo seed setup` once per machine); here it is set for the demo
# alone with RUSTC_WRAPPER, so your cargo config is left as it is.
# Exits non-zero when cargo compiles anything else. The default store is
# redirected into the demo's own temporary directory (XDG_CACHE_HOME), so
# the demo leaves nothing in yours.
# Usage: bash examples/demo.sh   (needs cargo and git; fetches two small crates)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cargo-seed-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_SEED_STORE RUSTC_WRAPPER RUSTFLAGS
export XDG_CACHE_HOME="$work/cache"

echo "== building cargo-seed"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin cargo-seed
export PATH="$repo/target/debug:$PATH"
export RUSTC_WRAPPER=cargo-seed
git_() { git -c user.name=demo -c user.email=demo@example.com "$@"; }

# `cargo build -v` in the current directory; fails unless cargo compiled
# exactly the packages named (none: every unit Fresh).
build_compiles_exactly() {
    local log compiled expected
    log=$(cargo build -v --locked 2>&1) || { echo "$log"; exit 1; }
    echo "$log" | grep -E "^ *(Fresh|Dirty|Compiling|Finished)"
    compiled=$(echo "$log" | sed -nE 's/^ *Compiling ([^ ]+) .*/\1/p' | sort | xargs)
    expected=$(printf '%s\n' "$@" | sort | xargs)
    if [ "$compiled" != "$expected" ]; then
        echo "demo: FAILED: cargo compiled [$compiled], expected [$expected]" >&2
        exit 1
    fi
    echo "== as expected: cargo compiled [${compiled:-nothing}]"
}

echo "== CI: build and publish (store: cargo seed's default, under $XDG_CACHE_HOME)"
cp -r "$repo/fixtures/sample-ws" "$work/ci"
rm -rf "$work/ci/target"
cd "$work/ci"
git_ init -q -b main && git_ add -A && git_ commit -qm "sample workspace"
cargo build --locked
cargo seed publish
[ -d "$XDG_CACHE_HOME/cargo-seed/store/snapshots" ] ||
    { echo "demo: FAILED: nothing was published to the default store" >&2; exit 1; }

echo "== developer: a fresh clone elsewhere, seeded, then built"
git_ clone -q "$work/ci" "$work/elsewhere/app"
cd "$work/elsewhere/app"
cargo seed
build_compiles_exactly
./target/debug/app | tee "$work/out"
grep -q "^hello, seed" "$work/out" || { echo "demo: FAILED: unexpected output" >&2; exit 1; }

echo "== developer: an edit before seeding rebuilds only that member and its dependents"
git_ clone -q "$work/ci" "$work/edited/app"
cd "$work/edited/app"
sed -i 's/hello, /hi, /' greet/src/lib.rs
cargo seed 2>&1 | tee "$work/seeded"
grep -q "incremental state relocated for" "$work/seeded" ||
    { echo "demo: FAILED: the incremental state was not relocated" >&2; exit 1; }
objects() { find target/debug/incremental -name '*.o' -printf '%i %p\n' | sort -k2; }
objects > "$work/before"
build_compiles_exactly greet app
# An object file of a new session that is a hard link of a seeded one is a
# codegen unit rustc reused instead of compiling it.
objects > "$work/after"
reused=$(awk 'NR == FNR { seen[$1] = 1; old[$2] = 1; next }
              !($2 in old) { total++; if ($1 in seen) linked++ }
              END { printf "%d of %d", linked, total }' "$work/before" "$work/after")
echo "== rustc reused $reused codegen units of the rebuilt crates from the seeded incremental state"
[ "${reused%% *}" -gt 0 ] ||
    { echo "demo: FAILED: rustc reused no seeded codegen unit" >&2; exit 1; }
./target/debug/app | tee "$work/out"
grep -q "^hi, seed" "$work/out" || { echo "demo: FAILED: the edit is not in the program" >&2; exit 1; }
echo "== demo passed"
