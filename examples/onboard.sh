#!/usr/bin/env bash
# Makes this checkout ready to build from CI's build state, in one command:
# installs cargo-seed if it is missing, sets this machine up once, seeds the
# target dir from the nearest snapshot CI published, and builds.
#
#   bash examples/onboard.sh [cargo build arguments…]
#
# Copy it into your repository (scripts/onboard.sh, say). It is idempotent:
# run it again at any time. It never fails because seeding did: a seed that
# cannot be done leaves the target dir as it was, and cargo builds as usual.
#
# Settings (environment):
#   CARGO_SEED_STORE    where CI publishes (or `store` under
#                       [workspace.metadata.seed] in Cargo.toml)
#   CARGO_SEED_INSTALL  what `cargo install` gets when cargo-seed is missing
#                       (default: cargo-seed-ci --locked)
set -uo pipefail

say() { printf 'onboard: %s\n' "$*" >&2; }
fail() {
    say "error: $*"
    exit 1
}

command -v cargo >/dev/null || fail "cargo is not on PATH: install Rust (https://rustup.rs), then run this again"
command -v git >/dev/null || fail "git is not on PATH: install it, then run this again"

if ! command -v cargo-seed >/dev/null; then
    install=${CARGO_SEED_INSTALL:-cargo-seed-ci --locked}
    say "installing cargo-seed: cargo install $install"
    # shellcheck disable=SC2086 # the setting is a list of arguments
    cargo install $install ||
        fail "could not install cargo-seed (see above); install it by hand, then run this again"
fi

# Once per machine: compile through cargo-seed's rustc wrapper, so that CI's
# incremental state is reused at this checkout's path.
if ! cargo seed setup --check >/dev/null 2>&1; then
    cargo seed setup ||
        say "warning: not set up (see above); builds work, but reuse CI's incremental state only at CI's path"
fi

cargo seed
case $? in
0) ;;
3) say "no snapshot is usable here (see above); building from scratch" ;;
4) say "the target dir already holds build state, left as it is (cargo seed --force replaces it)" ;;
130) fail "interrupted; the target dir is as it was" ;;
*) say "warning: seeding failed (see above); the target dir is as it was, building from scratch" ;;
esac

cargo build "$@" || fail "cargo build failed (see above)"
say "ready: cargo build, cargo test and the editor start from CI's build state"
