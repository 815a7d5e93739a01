# Sourced by the bench scripts: builds the binaries the way install/install.sh does, so that
# what is timed is what a user runs.
#
#   bench_build ROOT SKIP_BUILD BIN...
#
# Sets BUILD (what was built, for the report), TRIPLE and BIN_DIR. On Linux x86_64/aarch64:
#   1. static musl (`<arch>-unknown-linux-musl`, non-PIE) when that Rust target is installed
#      (`rustup target add <arch>-unknown-linux-musl`); CTXOPT_LIBC=gnu skips it;
#   2. else static glibc (`+crt-static`, non-PIE);
# elsewhere a plain release build. Honours CARGO_TARGET_DIR.

# Whether rustc has the standard library for target $1.
bench_has_target() {
    local dir
    dir=$(rustc --print target-libdir --target "$1" 2>/dev/null) || return 1
    compgen -G "$dir/libstd-*.rlib" >/dev/null
}

# `cargo build --release --locked --target $2 ARGS...` in $1 for a musl target $2, static and
# non-PIE, with a C compiler for the C parts of dependencies (ring): CC_<target> if set, else
# musl-gcc, else cc, as install/install.sh does.
bench_cargo_musl() {
    local root=$1 triple=$2
    shift 2
    local cc_var="CC_${triple//-/_}"
    local cc=${!cc_var:-}
    [[ -n "$cc" ]] || cc=$(command -v musl-gcc || echo cc)
    (cd "$root" && env "$cc_var=$cc" RUSTFLAGS="-C relocation-model=static" \
        cargo build --release --locked --target "$triple" "$@")
}

bench_build() {
    local root=$1 skip=$2
    shift 2
    local target_dir=${CARGO_TARGET_DIR:-$root/target}
    local bins=() b
    for b in "$@"; do bins+=(--bin "$b"); done
    TRIPLE=""
    if [[ "$(uname -s)" == Linux && "$(uname -m)" =~ ^(x86_64|aarch64)$ ]]; then
        local arch
        arch=$(uname -m)
        if [[ "${CTXOPT_LIBC:-}" != gnu ]] && bench_has_target "$arch-unknown-linux-musl"; then
            TRIPLE="$arch-unknown-linux-musl"
            BUILD="static musl"
            [[ "$skip" -eq 1 ]] || bench_cargo_musl "$root" "$TRIPLE" -p ctxopt-hooks "${bins[@]}"
        else
            TRIPLE="$arch-unknown-linux-gnu"
            BUILD="static glibc"
            [[ "$skip" -eq 1 ]] || (cd "$root" && \
                RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
                cargo build --release --locked --target "$TRIPLE" -p ctxopt-hooks "${bins[@]}")
        fi
        BIN_DIR="$target_dir/$TRIPLE/release"
    else
        BUILD=dynamic
        [[ "$skip" -eq 1 ]] || (cd "$root" && cargo build --release --locked -p ctxopt-hooks "${bins[@]}")
        BIN_DIR="$target_dir/release"
    fi
    for b in "$@"; do
        [[ -x "$BIN_DIR/$b" ]] || { echo "bench: missing $BIN_DIR/$b (build first)" >&2; return 1; }
    done
}
