#!/usr/bin/env bash
# The runner's own overhead: `ctxopt-run -- /bin/true` against `/bin/true`, whole process.
#
#   benches/run-overhead.sh [--runs N] [--rounds K] [--warmup N] [--out FILE] [--skip-build]
#
# Builds ctxopt-run in release mode (statically linked on Linux, as benches/run.sh and the
# installer do; dynamically elsewhere), makes a temporary HOME and project, and runs
# `hyperfine -N --input FIXTURE` on /bin/true and on `ctxopt-run -- /bin/true` in K interleaved
# rounds, feeding both a real PreToolUse input. Every runner run does its real work: reads the
# input, checks for a `.disabled` script and an open breaker, spawns /bin/true in its own
# process group, appends a hook_execution and a hook_latency record and a hook_execution.log
# line. Overhead = median(runner) - median(/bin/true); budget: <= 1 ms (issue 4).
#
# Needs hyperfine >= 1.16 (for --input; `cargo install hyperfine@1.20.0 --locked`), python3, cargo.
# Never called by the tests or CI: process timings on shared runners are noise.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/run-overhead.sh [--runs N] [--rounds K] [--warmup N] [--out FILE] [--skip-build]

  --runs N      timed runs per command (default 300; use >= 200 for reported numbers)
  --rounds K    split the N runs into K hyperfine calls, alternating the order of the two
                commands, and merge the times (default 30)
  --warmup N    warm-up runs per command and call (default 20)
  --out FILE    where to write the markdown report (default target/bench/run-overhead.md)
  --skip-build  reuse the release ctxopt-run already built
  -h, --help    this text

Budget: the runner's median overhead over the wrapped command <= 1 ms.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=300
ROUNDS=30
WARMUP=20
OUT="$ROOT/target/bench/run-overhead.md"
SKIP_BUILD=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a value}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run-overhead.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 2 ]] || { echo "run-overhead.sh: --runs must be an integer >= 2" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "run-overhead.sh: --rounds must be an integer >= 1" >&2; exit 2; }
[[ "$WARMUP" =~ ^[0-9]+$ ]] || { echo "run-overhead.sh: --warmup must be an integer" >&2; exit 2; }

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
JSON_DIR=$(dirname "$OUT")/json-run-overhead
mkdir -p "$JSON_DIR"
rm -f "$JSON_DIR"/*.json

HYPERFINE=$(command -v hyperfine || true)
if [[ -z "$HYPERFINE" && -x "$HOME/.cargo/bin/hyperfine" ]]; then
    HYPERFINE="$HOME/.cargo/bin/hyperfine"
fi
if [[ -z "$HYPERFINE" ]] || ! "$HYPERFINE" --help | grep -q -- '--input'; then
    echo "run-overhead.sh: needs hyperfine >= 1.16 (with --input): cargo install hyperfine@1.20.0 --locked" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "run-overhead.sh: needs python3" >&2; exit 1; }

TRUE_BIN=/bin/true
[[ -x "$TRUE_BIN" ]] || TRUE_BIN=/usr/bin/true
FIXTURE="$ROOT/fixtures/hooks/PreToolUse/bash.json"

# ---- build ---------------------------------------------------------------------------------
# The way install/install.sh builds: static musl where that Rust target is installed, else
# static glibc (benches/common.sh).
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
bench_build "$ROOT" "$SKIP_BUILD" ctxopt-run || exit 1
RUNNER="$BIN_DIR/ctxopt-run"

# ---- temporary HOME and project ------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-run-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home" "$WORK/project/.claude/hooks/data"
chmod 700 "$WORK/project/.claude/hooks/data"
in_project() {
    env -u CLAUDE_CODE_SESSION_ID HOME="$WORK/home" CLAUDE_PROJECT_DIR="$WORK/project" "$@"
}

# ---- latency -------------------------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }
LOAD_BEFORE=$(loadavg)
PER_ROUND=$(((RUNS + ROUNDS - 1) / ROUNDS))
[[ "$PER_ROUND" -ge 2 ]] || PER_ROUND=2
for ((round = 1; round <= ROUNDS; round++)); do
    a=(-n true "$TRUE_BIN")
    b=(-n runner "$RUNNER -- $TRUE_BIN")
    if ((round % 2 == 0)); then args=("${b[@]}" "${a[@]}"); else args=("${a[@]}" "${b[@]}"); fi
    log="$JSON_DIR/round$round.log"
    if ! in_project "$HYPERFINE" -N --style basic --warmup "$WARMUP" --runs "$PER_ROUND" \
        --input "$FIXTURE" --export-json "$JSON_DIR/round$round.json" "${args[@]}" >"$log" 2>&1; then
        cat "$log" >&2
        echo "run-overhead.sh: hyperfine failed; see above" >&2
        exit 1
    fi
    printf . >&2
done
echo >&2
LOAD_AFTER=$(loadavg)
FAILS=$(grep -c ' FAIL ' "$WORK/project/.claude/hooks/data/hook_execution.log" || true)
RECORDED=$(grep -c '"type":"hook_execution"' "$WORK/project/.claude/hooks/data/metrics.jsonl" || true)

ROOT="$ROOT" RUNS="$RUNS" ROUNDS="$ROUNDS" PER_ROUND="$PER_ROUND" WARMUP="$WARMUP" \
HYPERFINE="$HYPERFINE" BUILD="$BUILD" RUNNER="$RUNNER" LOAD_BEFORE="$LOAD_BEFORE" \
LOAD_AFTER="$LOAD_AFTER" FAILS="$FAILS" RECORDED="$RECORDED" \
python3 - "$JSON_DIR" "$OUT" <<'PY'
import datetime, glob, json, os, statistics, subprocess, sys
json_dir, out = sys.argv[1:3]
E = os.environ
times = {}
for path in sorted(glob.glob(os.path.join(json_dir, "round*.json"))):
    for r in json.load(open(path))["results"]:
        times.setdefault(r["command"], []).extend(r["times"])
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
ms = lambda s: f"{s * 1000:.3f}"
t, r = times["true"], times["runner"]
overhead = statistics.median(r) - statistics.median(t)
lines = []
p = lines.append
p(f"## ctxopt-run overhead {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
p("")
p(f"- command: `benches/run-overhead.sh --runs {E['RUNS']} --rounds {E['ROUNDS']} --warmup {E['WARMUP']}`: "
  f"{E['ROUNDS']} calls of `hyperfine -N --warmup {E['WARMUP']} --runs {E['PER_ROUND']} --input "
  f"fixtures/hooks/PreToolUse/bash.json`, order alternating, times merged")
p(f"- machine: nproc {sh('nproc') or os.cpu_count()}; `{sh('uname', '-a')}`")
p(f"- toolchain: {sh('rustc', '-V')}; {sh(E['HYPERFINE'], '--version')}")
p(f"- runner: {E['BUILD']} release build `{os.path.relpath(E['RUNNER'], E['ROOT'])}`")
p(f"- load average (1/5/15 min): before `{E['LOAD_BEFORE']}`, after `{E['LOAD_AFTER']}`")
p(f"- runner runs recorded: {E['RECORDED']} hook_execution records; FAIL lines: {E['FAILS']}")
p("")
p("| command | runs | median ms | mean ± σ ms | min ms |")
p("|---|---:|---:|---:|---:|")
for name, label in (("true", "/bin/true"), ("runner", "ctxopt-run -- /bin/true")):
    v = times[name]
    p(f"| {label} | {len(v)} | {ms(statistics.median(v))} | {ms(statistics.fmean(v))} ± "
      f"{ms(statistics.stdev(v))} | {ms(min(v))} |")
p("")
verdict = "met" if overhead <= 0.001 else "**missed**"
p(f"Overhead (median − median): **{ms(overhead)} ms**; min − min: {ms(min(r) - min(t))} ms. "
  f"Budget ≤ 1 ms: {verdict}.")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
echo "run-overhead.sh: report written to $OUT" >&2
