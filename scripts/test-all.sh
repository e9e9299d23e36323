#!/usr/bin/env bash
# Every test simnas has, from a fresh clone: installs what the tests need when missing
# (the Cortex-M4 target, QEMU), checks formatting, lints and docs, builds the no_std crates and
# the firmware for the board, then runs the workspace tests.
#
# Benchmark tables are read from $SIMNAS_DATA (default: ../shared/data beside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."

export SIMNAS_DATA="${SIMNAS_DATA:-$(cd .. && pwd)/shared/data}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Every optional part of the host side: candle (`train`) and tract (`onnx`). The tests run
# with all of them; the lints also check the default build (what `cargo run --release --
# search` compiles). Named per package: `--all-features` on the workspace would also switch
# on both of firmware-bench's boards, which exclude each other.
HOST_FEATURES="host-trainer/train,host-trainer/onnx"

# Each step's name and wall time, printed as a summary at the end.
SUMMARY=()
STEP_NAME=""
STEP_T0=$(date +%s)
end_step() {
    if [ -n "$STEP_NAME" ]; then
        SUMMARY+=("$(printf '%5ss  %s' "$(( $(date +%s) - STEP_T0 ))" "$STEP_NAME")")
    fi
}
step() {
    end_step
    STEP_NAME="$*"
    STEP_T0=$(date +%s)
    printf '\n== %s\n' "$*"
}
on_exit() {
    local rc=$?
    end_step
    STEP_NAME=""
    printf '\n== summary\n'
    printf '%s\n' "${SUMMARY[@]}"
    if [ "$rc" -eq 0 ]; then
        echo "all steps passed"
    else
        echo "FAILED (exit status $rc) in the last step above"
    fi
}
trap on_exit EXIT

step "toolchain: thumbv7em-none-eabihf target, rustfmt, clippy"
if ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
    rustup target add thumbv7em-none-eabihf
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

step "qemu-system-arm (the reference board, mps2-an386)"
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-system-arm >/dev/null
fi
qemu-system-arm --version | head -n 1

if [ ! -d "$SIMNAS_DATA" ]; then
    echo "benchmark data not found at $SIMNAS_DATA; set SIMNAS_DATA to the folder holding nb201_archs.csv" >&2
    exit 1
fi

step "format"
cargo fmt --all -- --check

step "no_std builds for the board (no default features)"
cargo build -q -p simnas-shared --no-default-features --target thumbv7em-none-eabihf
cargo build -q -p edge-runtime --no-default-features --target thumbv7em-none-eabihf

step "firmware: reference board (QEMU mps2-an386, serving and searching at boot) and a real board (NUCLEO-F411RE)"
cargo fw-build -q
cargo fw-build-autonomous -q
cargo fw-build-nucleo -q

step "lints (host with every feature and with the default ones, and the firmware as the board sees it)"
cargo clippy -q --release --workspace --all-targets --features "$HOST_FEATURES" -- -D warnings
cargo clippy -q --release --workspace --all-targets -- -D warnings
cargo clippy -q --release -p firmware-bench --target thumbv7em-none-eabihf -- -D warnings
cargo clippy -q --release -p firmware-bench --target thumbv7em-none-eabihf --features autonomous \
    --target-dir target/fw-autonomous -- -D warnings
cargo clippy -q --release -p firmware-bench --target thumbv7em-none-eabihf --no-default-features \
    --features board-nucleo-f411 --target-dir target/nucleo-f411 -- -D warnings

step "docs (every intra-doc link resolves)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --workspace --features "$HOST_FEATURES"

step "the default build (what a fresh clone's first command builds): the main job, and the commands it leaves out"
cargo build -q --release -p host-trainer --bin simnas
main_job="$(cd "$(mktemp -d)" && "$OLDPWD/target/release/simnas" search)"
grep -q '^pick: ' <<<"$main_job" || { echo "$main_job"; echo "the main job printed no pick" >&2; exit 1; }
for cmd in train score bench; do
    if msg="$(./target/release/simnas "$cmd" 2>&1)"; then
        echo "simnas $cmd succeeded in the default build, which leaves it out" >&2; exit 1
    fi
    grep -q -- "--features train" <<<"$msg" || { echo "$msg"; echo "simnas $cmd does not say how to rebuild it" >&2; exit 1; }
done
echo "main job: $(grep '^pick: ' <<<"$main_job" | cut -c1-100)..."

step "tests (every feature)"
cargo test --release --workspace --features "$HOST_FEATURES"

step "fuzz smoke run (cargo-fuzz; \$SIMNAS_FUZZ_SECONDS per target, 0 skips)"
FUZZ_SECONDS="${SIMNAS_FUZZ_SECONDS:-20}"
if [ "$FUZZ_SECONDS" = "0" ]; then
    echo "skipped (SIMNAS_FUZZ_SECONDS=0)"
elif ! cargo fuzz --version >/dev/null 2>&1; then
    echo "WARNING: cargo-fuzz is not installed: the fuzz smoke run was SKIPPED (cargo install cargo-fuzz, then rerun)" >&2
    SUMMARY+=("    -  fuzz smoke run SKIPPED: cargo-fuzz is not installed")
else
    # libFuzzer needs unstable compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain
    # accept them for this build only.
    (
        cd fuzz
        export RUSTC_BOOTSTRAP=1
        log="$(mktemp)"
        for target in $(cargo fuzz list); do
            if ! cargo fuzz run -O "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 >"$log" 2>&1; then
                tail -n 40 "$log"
                echo "fuzz target $target failed (the output above says why; a crash input, if any, is under fuzz/artifacts/$target)" >&2
                exit 1
            fi
            printf '%-14s %s\n' "$target" "$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
        done
        rm -f "$log"
    )
fi
