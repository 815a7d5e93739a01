#!/usr/bin/env bash
# install/install.sh — builds ctxopt's release binaries from the repository this script lives
# in, installs them into PREFIX, and registers the hooks in a project (or runs a demo).
#
# Responsible for: building, copying binaries, calling `ctxopt install` / `ctxopt uninstall`,
# the demo. Must not edit any JSON itself: settings are changed only by the Rust code
# (`ctxopt install` keeps a pre-install copy and a manifest, `ctxopt uninstall` removes
# exactly what it added). Run with --help for usage.
set -euo pipefail
# bash 5.2 would expand `&` in ${var//pattern/replacement}; the demo substitutes paths.
shopt -u patsub_replacement 2>/dev/null || true

readonly BINARIES=(ctxopt ctxopt-session-start ctxopt-pre-tool-use ctxopt-post-tool-use ctxopt-run)
# The project directory the demo session was recorded in; replaced by the demo copy's path.
readonly RECORDED_PROJECT=/home/dev/proj

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd -- "$SCRIPT_DIR/.." && pwd)"
readonly SCRIPT_DIR REPO

usage() {
	cat <<'EOF'
Usage: install/install.sh [--prefix DIR] [--dry-run] [PROJECT_DIR]
       install/install.sh --uninstall [--prefix DIR] [--dry-run] [PROJECT_DIR]

Builds ctxopt's release binaries from this repository, installs ctxopt,
ctxopt-session-start, ctxopt-pre-tool-use, ctxopt-post-tool-use and ctxopt-run (the
runner `ctxopt install --wrap-existing` puts in front of a project's other hooks) into
PREFIX, and
registers the hooks in PROJECT_DIR/.claude/settings.local.json by running
`PREFIX/ctxopt install --project PROJECT_DIR`, which also puts a config-validating git
pre-commit hook into the project's repository (chained to an existing hook; skipped with a
note outside git). Existing settings and hooks are kept; a second run changes nothing;
`--uninstall PROJECT_DIR` removes exactly what was added.

With no PROJECT_DIR it runs a demo: copies the sample project fixtures/demo/project into a
new temporary directory, installs the hooks there, replays the recorded session
fixtures/demo/session.jsonl through the installed hook binaries, and prints what they
recorded (hook_execution.log and metrics.jsonl). The demo project is kept; its path is
printed at the end.

Options:
  --prefix DIR   where the binaries go (default: ~/.local/bin)
  --dry-run      print the plan and change nothing (passes --dry-run to ctxopt)
  --uninstall    with PROJECT_DIR: remove ctxopt's hooks from that project
                 (`ctxopt uninstall`); the binaries stay in PREFIX.
                 Without PROJECT_DIR: remove the four binaries from PREFIX.
  -h, --help     show this help

Build: on Linux x86_64/aarch64 the binaries are linked statically, in this order:
  1. against musl, when the Rust target <arch>-unknown-linux-musl is installed (with rustup
     present and the target missing, `rustup target add` is tried first):
       RUSTFLAGS="-C relocation-model=static" cargo build --release --locked --target <arch>-unknown-linux-musl
     A musl hook starts in about a quarter of glibc's start-up (no CPU-feature probing,
     which costs a VM exit per `cpuid` on virtual machines; BENCHMARKS.md).
  2. against glibc (on glibc hosts):
       RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release --locked --target <arch>-unknown-linux-gnu
  3. a plain `cargo build --release --locked` (dynamic; also the build on macOS).
Each falls back to the next if it fails.

Environment:
  CTXOPT_SKIP_BUILD=1   do not build; install prebuilt binaries from CTXOPT_BIN_DIR
  CTXOPT_BIN_DIR=DIR    directory holding the five prebuilt binaries (with CTXOPT_SKIP_BUILD=1)
  CARGO_TARGET_DIR      honoured when building
  CTXOPT_LIBC=gnu       skip the musl build (no `rustup target add` either)
  CC_<arch>_unknown_linux_musl
                        C compiler for the C parts of dependencies in the musl build
                        (default: musl-gcc if on PATH, else cc)

Exit status: 0 ok, 2 could not run.
EOF
}

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 2
}

warn() {
	printf 'install.sh: warning: %s\n' "$*" >&2
}

step() {
	printf '==> %s\n' "$*"
}

# A command line as the user could paste it.
quoted() {
	local out="" arg
	for arg in "$@"; do
		out+="${out:+ }$(printf '%q' "$arg")"
	done
	printf '%s\n' "$out"
}

PREFIX="${HOME}/.local/bin"
DRY_RUN=0
UNINSTALL=0
PROJECT=""

parse_args() {
	while (($# > 0)); do
		case "$1" in
		-h | --help)
			usage
			exit 0
			;;
		--prefix)
			(($# >= 2)) || die "--prefix needs a directory"
			PREFIX="$2"
			shift
			;;
		--prefix=*) PREFIX="${1#--prefix=}" ;;
		--dry-run) DRY_RUN=1 ;;
		--uninstall) UNINSTALL=1 ;;
		--)
			shift
			(($# <= 1)) || die "only one PROJECT_DIR may be given"
			PROJECT="${1:-}"
			break
			;;
		-*) die "unknown option $1 (see --help)" ;;
		*)
			[[ -z $PROJECT ]] || die "only one PROJECT_DIR may be given"
			PROJECT="$1"
			;;
		esac
		shift
	done
	[[ -n $PREFIX ]] || die "--prefix must not be empty"
	[[ $PREFIX == /* ]] || PREFIX="$PWD/$PREFIX"
	if [[ -n $PROJECT ]]; then
		[[ -d $PROJECT ]] || die "no such project directory: $PROJECT"
		PROJECT="$(cd -- "$PROJECT" && pwd)"
	fi
}

# The glibc Rust target to build statically for, when this host supports it.
static_triple() {
	[[ "$(uname -s)" == Linux ]] || return 1
	local arch
	arch="$(uname -m)"
	case "$arch" in
	x86_64 | aarch64) ;;
	*) return 1 ;;
	esac
	getconf GNU_LIBC_VERSION >/dev/null 2>&1 || return 1
	printf '%s-unknown-linux-gnu\n' "$arch"
}

# The musl Rust target to build statically for: Linux x86_64/aarch64, unless CTXOPT_LIBC=gnu.
musl_triple() {
	[[ "${CTXOPT_LIBC:-}" != gnu ]] || return 1
	[[ "$(uname -s)" == Linux ]] || return 1
	local arch
	arch="$(uname -m)"
	case "$arch" in
	x86_64 | aarch64) printf '%s-unknown-linux-musl\n' "$arch" ;;
	*) return 1 ;;
	esac
}

# Whether rustc has the standard library for target $1.
has_target() {
	local dir
	dir="$(rustc --print target-libdir --target "$1" 2>/dev/null)" || return 1
	compgen -G "$dir/libstd-*.rlib" >/dev/null
}

target_dir() {
	local dir="${CARGO_TARGET_DIR:-target}"
	[[ $dir == /* ]] || dir="$REPO/$dir"
	printf '%s\n' "$dir"
}

skip_build() {
	[[ "${CTXOPT_SKIP_BUILD:-}" == 1 ]]
}

build_plan() {
	local triple
	if skip_build; then
		printf 'no build (CTXOPT_SKIP_BUILD=1): use the binaries in %s\n' "${CTXOPT_BIN_DIR:-<CTXOPT_BIN_DIR unset>}"
		return
	fi
	if triple="$(musl_triple)"; then
		printf 'build in %s: RUSTFLAGS="-C relocation-model=static" cargo build --release --locked --target %s (rustup target add %s first if missing)\n' "$REPO" "$triple" "$triple"
		printf '     if that fails: '
	fi
	if triple="$(static_triple)"; then
		printf 'build in %s: RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release --locked --target %s (plain cargo build --release --locked if that fails)\n' "$REPO" "$triple"
	else
		printf 'build in %s: cargo build --release --locked\n' "$REPO"
	fi
}

# The static musl build; sets BUILT on success.
build_musl() {
	local triple="$1"
	if ! has_target "$triple"; then
		command -v rustup >/dev/null 2>&1 || return 1
		step "adding the Rust target $triple (rustup target add; CTXOPT_LIBC=gnu skips this)"
		rustup target add "$triple" || return 1
	fi
	local cc_var="CC_${triple//-/_}"
	local cc="${!cc_var:-}"
	[[ -n $cc ]] || cc="$(command -v musl-gcc || printf cc)"
	step "building static release binaries for $triple"
	(cd -- "$REPO" && env "$cc_var=$cc" RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C relocation-model=static" \
		cargo build --release --locked --target "$triple") || return 1
	BUILT="$(target_dir)/$triple/release"
}

# Builds the binaries and sets BUILT to the directory holding them.
build() {
	if skip_build; then
		[[ -n ${CTXOPT_BIN_DIR:-} ]] || die "CTXOPT_SKIP_BUILD=1 needs CTXOPT_BIN_DIR=<directory of prebuilt binaries>"
		BUILT="$CTXOPT_BIN_DIR"
		step "using prebuilt binaries in $BUILT (CTXOPT_SKIP_BUILD=1)"
		return
	fi
	command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust (https://rustup.rs) or use CTXOPT_SKIP_BUILD=1 CTXOPT_BIN_DIR=DIR"
	local triple
	if triple="$(musl_triple)"; then
		build_musl "$triple" && return
		warn "no static musl build ($triple not installable or its build failed); trying static glibc, whose hooks start ≈ 0.3 ms slower per call (set CTXOPT_LIBC=gnu to skip musl)"
	fi
	if triple="$(static_triple)"; then
		step "building static release binaries for $triple"
		if (cd -- "$REPO" && RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static -C relocation-model=static" \
			cargo build --release --locked --target "$triple"); then
			BUILT="$(target_dir)/$triple/release"
			return
		fi
		warn "the static build failed; falling back to a plain release build (hooks start slower)"
	fi
	step "building release binaries"
	(cd -- "$REPO" && cargo build --release --locked) || die "cargo build failed"
	BUILT="$(target_dir)/release"
}

install_binaries() {
	local bin
	for bin in "${BINARIES[@]}"; do
		[[ -f "$BUILT/$bin" && -x "$BUILT/$bin" ]] || die "missing executable $BUILT/$bin"
	done
	step "installing the binaries into $PREFIX"
	[[ -d $PREFIX ]] || install -d -m 0755 "$PREFIX"
	for bin in "${BINARIES[@]}"; do
		install -m 0755 "$BUILT/$bin" "$PREFIX/$bin"
		printf '  %s\n' "$PREFIX/$bin"
	done
	case ":${PATH}:" in
	*":$PREFIX:"*) ;;
	*) printf '  note: %s is not on PATH; the hooks do not need it (they are registered by absolute path), but you need it to run ctxopt by name\n' "$PREFIX" ;;
	esac
}

# `ctxopt install` for PROJECT, with the installed binaries' directory as typed (not resolved
# through symlinks, which is what ctxopt's own default would do).
register() {
	local project="$1"
	shift
	step "registering the hooks in $project/.claude/settings.local.json"
	"$PREFIX/ctxopt" install --project "$project" --bin-dir "$PREFIX" "$@"
}

do_install() {
	local what
	if [[ -n $PROJECT ]]; then
		what="$PROJECT"
	else
		what="demo (a copy of fixtures/demo/project in a new temporary directory)"
	fi
	printf 'ctxopt installer\n  repository: %s\n  prefix:     %s\n  project:    %s\n' "$REPO" "$PREFIX" "$what"
	printf 'Plan:\n'
	printf '  1. %s\n' "$(build_plan)"
	printf '  2. install -m 0755 %s into %s\n' "${BINARIES[*]}" "$PREFIX"
	if [[ -n $PROJECT ]]; then
		printf '  3. %s\n' "$(quoted "$PREFIX/ctxopt" install --project "$PROJECT" --bin-dir "$PREFIX")"
	else
		printf '  3. copy %s to a new temporary directory and run ctxopt install there\n' "$REPO/fixtures/demo/project"
		printf '  4. replay %s through the installed hooks and show what they recorded\n' "$REPO/fixtures/demo/session.jsonl"
	fi
	if ((DRY_RUN)); then
		if [[ -n $PROJECT && -x "$PREFIX/ctxopt" ]]; then
			step "preview with the ctxopt already in $PREFIX"
			register "$PROJECT" --dry-run
		elif [[ -n $PROJECT ]]; then
			printf '(no settings preview: %s is not installed yet)\n' "$PREFIX/ctxopt"
		fi
		printf 'dry run: nothing changed\n'
		return
	fi
	build
	install_binaries
	if [[ -n $PROJECT ]]; then
		register "$PROJECT"
	else
		demo
	fi
}

do_uninstall() {
	local ctxopt="$PREFIX/ctxopt" bin
	if [[ -n $PROJECT ]]; then
		printf 'Plan:\n  1. %s\n' "$(quoted "$ctxopt" uninstall --project "$PROJECT")"
		[[ -x $ctxopt ]] || die "$ctxopt not found; pass the --prefix you installed with"
		step "removing ctxopt's hooks from $PROJECT"
		if ((DRY_RUN)); then
			"$ctxopt" uninstall --project "$PROJECT" --dry-run
		else
			"$ctxopt" uninstall --project "$PROJECT"
		fi
		printf 'the binaries stay in %s (remove them with: %s)\n' "$PREFIX" \
			"$(quoted "$0" --uninstall --prefix "$PREFIX")"
		return
	fi
	printf 'Plan:\n'
	for bin in "${BINARIES[@]}"; do
		printf '  remove %s\n' "$PREFIX/$bin"
	done
	printf 'Projects still registered would run hook commands that no longer exist, which Claude\nCode skips without a word: first run "%s uninstall --project DIR" in them.\n' "$PREFIX/ctxopt"
	if ((DRY_RUN)); then
		printf 'dry run: nothing changed\n'
		return
	fi
	for bin in "${BINARIES[@]}"; do
		if [[ -e "$PREFIX/$bin" ]]; then
			rm -f -- "$PREFIX/$bin"
			printf 'removed %s\n' "$PREFIX/$bin"
		else
			printf 'not present: %s\n' "$PREFIX/$bin"
		fi
	done
}

json_escape() {
	local s="$1"
	s="${s//\\/\\\\}"
	s="${s//\"/\\\"}"
	printf '%s' "$s"
}

# Feeds each recorded hook input to the binary Claude Code would run for it, as Claude Code
# would: JSON on stdin, CLAUDE_PROJECT_DIR set, the project as working directory.
replay() {
	local dir="$1" session="$REPO/fixtures/demo/session.jsonl" line event bin out rc json_dir
	json_dir="$(json_escape "$dir")"
	step "replaying the recorded session $session"
	while IFS= read -r line || [[ -n $line ]]; do
		[[ -n $line ]] || continue
		if [[ $line =~ \"hook_event_name\":[[:space:]]*\"([A-Za-z]+)\" ]]; then
			event="${BASH_REMATCH[1]}"
		else
			warn "skipping a line without hook_event_name"
			continue
		fi
		case "$event" in
		SessionStart) bin="ctxopt-session-start" ;;
		PreToolUse) bin="ctxopt-pre-tool-use" ;;
		PostToolUse | PostToolUseFailure) bin="ctxopt-post-tool-use" ;;
		*)
			warn "skipping $event: ctxopt registers no hook for it"
			continue
			;;
		esac
		line="${line//"$RECORDED_PROJECT"/$json_dir}"
		rc=0
		out="$(cd -- "$dir" && printf '%s\n' "$line" | CLAUDE_PROJECT_DIR="$dir" "$PREFIX/$bin")" || rc=$?
		printf '  %-19s -> %-21s exit %d%s\n' "$event" "$bin" "$rc" "${out:+  stdout: $out}"
	done <"$session"
}

show_records() {
	local data="$1/.claude/hooks/data"
	local log="$data/hook_execution.log" metrics="$data/metrics.jsonl" sep=$'\x1f'
	local time type hook what result detail
	step "recorded in $log"
	if [[ -s $log ]]; then
		sed 's/^/  /' "$log"
	else
		printf '  (nothing)\n'
	fi
	if [[ ! -s $metrics ]]; then
		step "recorded in $metrics: nothing"
		return
	fi
	step "recorded in $metrics: $(wc -l <"$metrics" | tr -d ' ') records"
	printf '  count  type\n'
	awk 'match($0, /"type":"[^"]*"/) { n[substr($0, RSTART + 8, RLENGTH - 9)]++ }
		END { for (t in n) printf "  %5d  %s\n", n[t], t }' "$metrics" | sort -k2
	if ! command -v jq >/dev/null 2>&1; then
		printf '  (install jq for a per-record table)\n'
		return
	fi
	printf '\n  %-12s  %-15s  %-20s  %-18s  %-6s  %s\n' time type hook event/tool result detail
	jq -r --arg sep "$sep" '[
			(.timestamp // "" | .[11:23]),
			(.type // "-"),
			(.hook // "-"),
			(.event // .tool_name // .source // "-"),
			(if .success == true then "ok" elif .success == false then "failed" else "" end),
			(.command // .error // (if .duration_ms != null then "\(.duration_ms) ms" else "" end))
		] | map(tostring) | join($sep)' "$metrics" |
		while IFS="$sep" read -r time type hook what result detail; do
			printf '  %-12s  %-15s  %-20s  %-18s  %-6s  %s\n' "$time" "$type" "$hook" "$what" "$result" "$detail"
		done
}

demo() {
	local dir
	dir="$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-demo.XXXXXX")"
	step "copying the sample project to $dir"
	cp -R -- "$REPO/fixtures/demo/project/." "$dir/"
	register "$dir"
	replay "$dir"
	show_records "$dir"
	cat <<EOF

The demo project is $dir
  its settings:  cat $(printf '%q' "$dir/.claude/settings.local.json")
  try it live:   cd $(printf '%q' "$dir") && claude
  undo:          $(quoted "$PREFIX/ctxopt" uninstall --project "$dir")   (or rm -rf $(printf '%q' "$dir"))
EOF
}

main() {
	parse_args "$@"
	if ((UNINSTALL)); then
		do_uninstall
	else
		do_install
	fi
}

main "$@"
