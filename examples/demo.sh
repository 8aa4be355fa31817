#!/usr/bin/env bash
# The main job, end to end, on the default local store:
#   1. "CI" builds the sample workspace (fixtures/sample-ws) as a git repo and
#      runs `cargo seed publish`;
#   2. a "developer" clones it at another absolute path, runs `cargo seed`,
#      then `cargo build -v`, which reports every unit Fresh;
#   3. the developer edits a member: cargo seed leaves exactly that member and
#      its dependents to rebuild.
# Usage: bash examples/demo.sh   (needs cargo and git; fetches two small crates)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cargo-seed-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR CARGO_SEED_STORE

echo "== building cargo-seed"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin cargo-seed
export PATH="$repo/target/debug:$PATH"
git_() { git -c user.name=demo -c user.email=demo@example.com "$@"; }

echo "== CI: build and publish (store: cargo seed's default per-user store)"
cp -r "$repo/fixtures/sample-ws" "$work/ci"
rm -rf "$work/ci/target"
cd "$work/ci"
git_ init -q -b main && git_ add -A && git_ commit -qm "sample workspace"
cargo build --locked
cargo seed publish

echo "== developer: a fresh clone elsewhere, seeded, then built"
git_ clone -q "$work/ci" "$work/elsewhere/app"
cd "$work/elsewhere/app"
cargo seed
cargo build -v --locked 2>&1 | grep -E "Fresh|Dirty|Compiling|Finished"
./target/debug/app

echo "== developer: an edit before seeding rebuilds only that member and its dependents"
git_ clone -q "$work/ci" "$work/edited/app"
cd "$work/edited/app"
sed -i 's/hello, /hi, /' greet/src/lib.rs
cargo seed
cargo build -v --locked 2>&1 | grep -E "Fresh|Dirty|Compiling|Finished"
./target/debug/app
