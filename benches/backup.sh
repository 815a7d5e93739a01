#!/usr/bin/env bash
# SessionStart with the hourly backup due (issue 6 item 5), whole process, against /bin/true;
# and, for information, what the detached `ctxopt backup create` costs.
#
#   benches/backup.sh [--runs N] [--warmup N] [--skip-build] [--bin-dir DIR]
#
# Builds `ctxopt-session-start` and `ctxopt` in release mode (statically linked on Linux,
# as the installer does), makes a temporary HOME and project (settings, 50 skills, 5 hook
# scripts), and times with `hyperfine -N`:
#   /bin/true
#   ctxopt-session-start   with no backup yet, so a backup is due on every run: `--prepare`
#                          removes the backup directory and the `state/backup-requested`
#                          marker before each run. The hook only lists the backup directory and
#                          starts `ctxopt backup create --quiet` detached (not waited for). The
#                          hook runs from a copy beside a `ctxopt` that is /bin/true, so the
#                          detached work does not compete with the next runs; the process it
#                          starts costs the same.
#   ctxopt-session-start   with a fresh backup (not due): the listing only.
#   ctxopt backup create   the detached work itself (not part of the hook's latency).
# Budget: SessionStart median <= 5 x the median of /bin/true. The hook must call
# `ctxopt::backup::check_at_session_start` (wired by the lead in lib/src/hook/session_start.rs);
# before that this measures SessionStart without the backup check.
#
# Needs hyperfine >= 1.16 and cargo. Never called by the tests or CI: process timings on
# shared runners are noise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=200
WARMUP=10
SKIP_BUILD=0
BIN_DIR=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --bin-dir) BIN_DIR=${2:?--bin-dir needs a value}; SKIP_BUILD=1; shift 2 ;;
        -h | --help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "backup.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 2 ]] || { echo "backup.sh: --runs must be an integer >= 2" >&2; exit 2; }

HYPERFINE=$(command -v hyperfine || true)
[[ -z "$HYPERFINE" && -x "$HOME/.cargo/bin/hyperfine" ]] && HYPERFINE="$HOME/.cargo/bin/hyperfine"
[[ -n "$HYPERFINE" ]] || { echo "backup.sh: needs hyperfine (cargo install hyperfine@1.20.0 --locked)" >&2; exit 1; }
TRUE_BIN=/bin/true
[[ -x "$TRUE_BIN" ]] || TRUE_BIN=/usr/bin/true

if [[ -z "$BIN_DIR" ]]; then
    # The way install/install.sh builds (benches/common.sh).
    # shellcheck source=benches/common.sh
    source "$ROOT/benches/common.sh"
    bench_build "$ROOT" "$SKIP_BUILD" ctxopt-session-start ctxopt || exit 1
fi
HOOK="$BIN_DIR/ctxopt-session-start"
CTXOPT="$BIN_DIR/ctxopt"
for b in "$HOOK" "$CTXOPT"; do
    [[ -x "$b" ]] || { echo "backup.sh: missing $b (build first)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-backup-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export HOME="$WORK/home"
PROJECT="$WORK/project"
mkdir -p "$HOME/.claude" "$PROJECT/.claude/hooks/data/state"
printf '{"permissions":{"allow":[]}}\n' >"$PROJECT/.claude/settings.json"
printf '{"model":"sonnet"}\n' >"$HOME/.claude/settings.json"
printf '{"mcpServers":{}}\n' >"$PROJECT/.mcp.json"
for i in $(seq 1 50); do
    mkdir -p "$PROJECT/.claude/skills/skill-$i"
    printf -- '---\nname: skill-%s\ndescription: bench skill %s\n---\nBody.\n' "$i" "$i" \
        >"$PROJECT/.claude/skills/skill-$i/SKILL.md"
done
for i in $(seq 1 5); do
    printf '#!/bin/sh\nexit 0\n' >"$PROJECT/.claude/hooks/hook-$i.sh"
done
INPUT="$WORK/input.json"
printf '{"session_id":"bench","transcript_path":"%s/t.jsonl","cwd":"%s","hook_event_name":"SessionStart","source":"startup"}' \
    "$WORK" "$PROJECT" >"$INPUT"
export CLAUDE_PROJECT_DIR="$PROJECT"
BACKUPS="$PROJECT/.kiro/specs/context-optimization/backup"
MARKER="$PROJECT/.claude/hooks/data/state/backup-requested"
mkdir -p "$WORK/bin"
cp "$HOOK" "$WORK/bin/ctxopt-session-start"
ln -s "$TRUE_BIN" "$WORK/bin/ctxopt"

"$WORK/bin/ctxopt-session-start" <"$INPUT" >/dev/null
"$HYPERFINE" -N --runs "$RUNS" --warmup "$WARMUP" --input "$INPUT" \
    --prepare "rm -rf $BACKUPS $MARKER" \
    --export-markdown "$WORK/due.md" --export-json "$WORK/due.json" \
    -n /bin/true "$TRUE_BIN" \
    -n "ctxopt-session-start (backup due)" "$WORK/bin/ctxopt-session-start"
"$CTXOPT" backup create --project "$PROJECT" --quiet
"$HYPERFINE" -N --runs "$RUNS" --warmup "$WARMUP" --input "$INPUT" \
    --export-markdown "$WORK/not-due.md" --export-json "$WORK/not-due.json" \
    -n /bin/true "$TRUE_BIN" \
    -n "ctxopt-session-start (backup not due)" "$WORK/bin/ctxopt-session-start"
"$HYPERFINE" -N --runs 30 --warmup 3 \
    -n "ctxopt backup create (detached work)" "$CTXOPT backup create --project $PROJECT --quiet"
cat "$WORK/due.md" "$WORK/not-due.md"
for f in due not-due; do
    python3 - "$WORK/$f.json" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
base = statistics.median(results[0]["times"])
for r in results[1:]:
    med = statistics.median(r["times"])
    low, base_low = min(r["times"]), min(results[0]["times"])
    print(f"{r['command']}: median {med * 1000:.2f} ms = {med / base:.2f} x /bin/true "
          f"({base * 1000:.2f} ms); min {low * 1000:.2f} ms = {low / base_low:.2f} x")
PY
done
echo "Budget: ctxopt-session-start median <= 5 x /bin/true."
