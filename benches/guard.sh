#!/usr/bin/env bash
# The guard's cost per tool call, whole process: `ctxopt-pre-tool-use` (the write analysis,
# then the snapshot check and the in-flight marker) and `ctxopt-post-tool-use` (the repair
# check), each against /bin/true on the same input.
#
#   benches/guard.sh [--runs N] [--rounds K] [--warmup N] [--out FILE] [--skip-build] [--keep]
#
# Builds the hooks in release mode (statically linked on Linux, as the installer does),
# makes a temporary HOME and a project with the files the guard watches (settings, local
# settings, .mcp.json, ctxopt.json, three hook scripts, a 64 KB ~/.claude.json), runs one
# SessionStart so the accepted state exists, then times in K interleaved rounds:
#   pre  Read                       (a read-only tool: no snapshot)
#   pre  Bash `ls -la`              (cannot write: the parser is skipped; snapshot check)
#   pre  Bash, 1 KB, writes         (parsed, targets normalised; snapshot check)
#   post Bash, 1 KB                 (the repair check: stats, nothing changed)
#   post with a 50 MB transcript    (the context size read from the transcript's tail)
#   pre Bash `ls -la`, pre Bash 1 KB and post Bash 1 KB again in a copy of the project with a
#   canary running (`.claude/canary.json` at 10%, accepted by the first hook run): every run
#   also folds the new metrics lines into the canary rollup and checks the rollback triggers
# Budget (issues 4 and 6): each median <= 1.25 x the median of /bin/true.
# --keep leaves the temporary HOME and projects in place (the path goes to stderr), for strace
# or perf of one case afterwards.
#
# Needs hyperfine >= 1.16 (`cargo install hyperfine@1.20.0 --locked`), python3, cargo.
# Never called by the tests or CI: process timings on shared runners are noise.
set -euo pipefail

usage() {
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=300
ROUNDS=30
WARMUP=20
OUT="$ROOT/target/bench/guard.md"
SKIP_BUILD=0
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a value}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "guard.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 2 ]] || { echo "guard.sh: --runs must be an integer >= 2" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "guard.sh: --rounds must be an integer >= 1" >&2; exit 2; }

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
JSON_DIR=$(dirname "$OUT")/json-guard
mkdir -p "$JSON_DIR"
rm -f "$JSON_DIR"/*.json

HYPERFINE=$(command -v hyperfine || true)
[[ -z "$HYPERFINE" && -x "$HOME/.cargo/bin/hyperfine" ]] && HYPERFINE="$HOME/.cargo/bin/hyperfine"
if [[ -z "$HYPERFINE" ]] || ! "$HYPERFINE" --help | grep -q -- '--input'; then
    echo "guard.sh: needs hyperfine >= 1.16 (with --input): cargo install hyperfine@1.20.0 --locked" >&2
    exit 1
fi
TRUE_BIN=/bin/true
[[ -x "$TRUE_BIN" ]] || TRUE_BIN=/usr/bin/true

# ---- build ---------------------------------------------------------------------------------
# The way install/install.sh builds (benches/common.sh): static musl where that Rust target is
# installed, else static glibc. `ctxopt` for SessionStart's hand-offs (the hourly backup).
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
bench_build "$ROOT" "$SKIP_BUILD" ctxopt-pre-tool-use ctxopt-post-tool-use ctxopt-session-start ctxopt || exit 1

# ---- temporary HOME and project ------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-guard-bench.XXXXXX")
if [[ "$KEEP" -eq 1 ]]; then
    echo "guard.sh: keeping the bench HOME and projects in $WORK" >&2
else
    trap 'rm -rf "$WORK"' EXIT
fi
P="$WORK/project"
mkdir -p "$WORK/home/.claude" "$P/.claude/hooks"
echo '{"model": "opus", "permissions": {"allow": ["Read"]}}' >"$P/.claude/settings.json"
echo '{"permissions": {"allow": ["Bash(ls:*)"]}}' >"$P/.claude/settings.local.json"
echo '{"mcpServers": {"memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}}}' >"$P/.mcp.json"
echo '{"guard": {"mode": "enforce"}}' >"$P/.claude/ctxopt.json"
for h in PreToolUse.js PostToolUse.sh session.py; do
    printf '#!/bin/sh\nexit 0\n' >"$P/.claude/hooks/$h"
    chmod 755 "$P/.claude/hooks/$h"
done
echo '{"model": "sonnet"}' >"$WORK/home/.claude/settings.json"
PC="$WORK/project-canary"
cp -a "$P" "$PC"
echo '{"enabled": true, "percentage": 10, "duration_minutes": 60, "metrics_threshold": {"error_rate": 0.5, "latency_p95": 5000}}' \
    >"$PC/.claude/canary.json"
python3 - "$WORK/home/.claude.json" "$P" <<'PY'
import json, sys
path, project = sys.argv[1:3]
history = [{"display": "x" * 200, "pastedContents": {}} for _ in range(280)]
json.dump({"numStartups": 12, "mcpServers": {},
           "projects": {project: {"history": history, "mcpServers": {}}}}, open(path, "w"))
PY

SESSION=0b7c1f00-5f0e-4b7e-9d1a-000000000001
common() {
    printf '"session_id":"%s","transcript_path":"%s/t.jsonl","cwd":"%s","permission_mode":"default"' \
        "$SESSION" "$WORK" "$P"
}
LONG=""
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    LONG+="grep -rn 'TODO' src/module$i | sort -u > /tmp/out$i.txt; "
done
LONG+="cat .claude/settings.json | jq '.permissions' && echo done"
python3 - "$WORK" "$(common)" "$LONG" <<'PY'
import json, sys
work, common, long = sys.argv[1:4]
base = json.loads("{" + common + "}")
def write(name, event, tool, tool_input, extra=None):
    d = dict(base, hook_event_name=event, tool_name=tool, tool_input=tool_input,
             tool_use_id="toolu_bench_" + name)
    d.update(extra or {})
    open(f"{work}/{name}.json", "w").write(json.dumps(d))
write("pre-read", "PreToolUse", "Read", {"file_path": base["cwd"] + "/src/main.rs"})
write("pre-ls", "PreToolUse", "Bash", {"command": "ls -la", "description": "list"})
write("pre-1kb", "PreToolUse", "Bash", {"command": long, "description": "grep the modules into /tmp"})
write("post-1kb", "PostToolUse", "Bash", {"command": long, "description": "grep the modules into /tmp"},
      {"tool_response": {"stdout": "done", "stderr": "", "interrupted": False, "isImage": False},
       "duration_ms": 41})
# A 50 MB transcript: PostToolUse reads its tail for the context size (and the first usage
# once, at the first call).
transcript = f"{work}/big-transcript.jsonl"
with open(transcript, "w") as t:
    def assistant(i):
        return json.dumps({"type": "assistant", "isSidechain": False, "version": "2.1.332",
                           "message": {"id": f"msg_{i}", "role": "assistant",
                                       "content": [{"type": "text", "text": "x" * 600}],
                                       "usage": {"input_tokens": 100 + i, "cache_creation_input_tokens": 0,
                                                 "cache_read_input_tokens": 5000, "output_tokens": 10}}})
    def user(i):
        return json.dumps({"type": "user", "message": {"role": "user", "content": "y" * 1500}})
    i, size = 0, 0
    while size < 50 * 1024 * 1024:
        line = assistant(i) + "\n" + user(i) + "\n"
        t.write(line)
        size += len(line)
        i += 1
d = dict(base, hook_event_name="PostToolUse", tool_name="Bash", transcript_path=transcript,
         tool_input={"command": "echo hi", "description": "say hi"}, tool_use_id="toolu_bench_50mb",
         tool_response={"stdout": "hi", "stderr": "", "interrupted": False, "isImage": False}, duration_ms=5)
open(f"{work}/post-50mb.json", "w").write(json.dumps(d))
PY
printf '{%s,"hook_event_name":"SessionStart","source":"startup"}' "$(common)" >"$WORK/start.json"
# The canary project's inputs: the same, with its own cwd.
for name in start pre-ls pre-1kb post-1kb; do
    python3 - "$WORK/$name.json" "$WORK/$name-canary.json" "$P" "$PC" <<'PY'
import json, sys
src, dst, p, pc = sys.argv[1:5]
d = json.load(open(src))
d["cwd"] = pc
json.dump(d, open(dst, "w"))
PY
done
in_project() { env -u CLAUDE_CODE_SESSION_ID HOME="$WORK/home" CLAUDE_PROJECT_DIR="$P" "$@"; }
in_canary() { env -u CLAUDE_CODE_SESSION_ID HOME="$WORK/home" CLAUDE_PROJECT_DIR="$PC" "$@"; }
in_project "$BIN_DIR/ctxopt-session-start" <"$WORK/start.json" >/dev/null
[[ -f "$P/.claude/hooks/data/lkg/index.json" ]] || { echo "guard.sh: SessionStart wrote no accepted state" >&2; exit 1; }
in_canary "$BIN_DIR/ctxopt-session-start" <"$WORK/start-canary.json" >/dev/null
grep -Eq '"enabled": *true' "$PC/.claude/hooks/data/canary-state.json" 2>/dev/null \
    || { echo "guard.sh: the canary project's hooks did not accept canary.json" >&2; exit 1; }
BYTES_1KB=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['tool_input']['command']))" "$WORK/pre-1kb.json")

# ---- latency -------------------------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }
LOAD_BEFORE=$(loadavg)
PER_ROUND=$(((RUNS + ROUNDS - 1) / ROUNDS))
[[ "$PER_ROUND" -ge 2 ]] || PER_ROUND=2
CASES=("pre-read:ctxopt-pre-tool-use" "pre-ls:ctxopt-pre-tool-use" "pre-1kb:ctxopt-pre-tool-use" "post-1kb:ctxopt-post-tool-use" "post-50mb:ctxopt-post-tool-use" "pre-ls-canary:ctxopt-pre-tool-use" "pre-1kb-canary:ctxopt-pre-tool-use" "post-1kb-canary:ctxopt-post-tool-use")
for case in "${CASES[@]}"; do
    name=${case%%:*}
    bin=${case#*:}
    run_in=in_project
    [[ "$name" == *-canary ]] && run_in=in_canary
    for ((round = 1; round <= ROUNDS; round++)); do
        a=(-n true "$TRUE_BIN")
        b=(-n hook "$BIN_DIR/$bin")
        if ((round % 2 == 0)); then args=("${b[@]}" "${a[@]}"); else args=("${a[@]}" "${b[@]}"); fi
        log="$JSON_DIR/$name-$round.log"
        if ! "$run_in" "$HYPERFINE" -N --style basic --warmup "$WARMUP" --runs "$PER_ROUND" \
            --input "$WORK/$name.json" --export-json "$JSON_DIR/$name-$round.json" "${args[@]}" >"$log" 2>&1; then
            cat "$log" >&2
            echo "guard.sh: hyperfine failed; see above" >&2
            exit 1
        fi
    done
    printf '%s ' "$name" >&2
done
echo >&2
LOAD_AFTER=$(loadavg)
DATA="$P/.claude/hooks/data"
FAILS=$(cat "$DATA/hook_execution.log" "$PC/.claude/hooks/data/hook_execution.log" | grep -c ' FAIL ' || true)
ROLLUPS=$(wc -l <"$PC/.claude/hooks/data/canary-rollup.jsonl" 2>/dev/null || echo 0)
grep -q '"canary_rollback"' "$PC/.claude/hooks/data/metrics.jsonl" && { echo "guard.sh: the canary rolled back during the benchmark" >&2; exit 1; }
DENIES=$(cat "$DATA/audit.log" 2>/dev/null | grep -c '"action":"deny"' || true)
REPAIRS=$(cat "$DATA/audit.log" 2>/dev/null | grep -c '"action":"repair"' || true)

ROOT="$ROOT" RUNS="$RUNS" ROUNDS="$ROUNDS" PER_ROUND="$PER_ROUND" WARMUP="$WARMUP" \
HYPERFINE="$HYPERFINE" BUILD="$BUILD" LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" \
FAILS="$FAILS" ROLLUPS="$ROLLUPS" DENIES="$DENIES" REPAIRS="$REPAIRS" BYTES_1KB="$BYTES_1KB" \
python3 - "$JSON_DIR" "$OUT" <<'PY'
import datetime, glob, json, os, statistics, subprocess, sys
json_dir, out = sys.argv[1:3]
E = os.environ
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
labels = {
    "pre-read": "PreToolUse, Read",
    "pre-ls": "PreToolUse, Bash `ls -la`",
    "pre-1kb": f"PreToolUse, Bash {E['BYTES_1KB']} B that writes",
    "post-1kb": f"PostToolUse, Bash {E['BYTES_1KB']} B (repair check)",
    "post-50mb": "PostToolUse with a 50 MB transcript (tail read)",
    "pre-ls-canary": "PreToolUse, Bash `ls -la`, canary running (rollup)",
    "pre-1kb-canary": f"PreToolUse, Bash {E['BYTES_1KB']} B that writes, canary running (rollup)",
    "post-1kb-canary": f"PostToolUse, Bash {E['BYTES_1KB']} B, canary running (rollup)",
}
ms = lambda s: f"{s * 1000:.3f}"
lines = []
p = lines.append
p(f"## The guard per tool call, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
p("")
p(f"- command: `benches/guard.sh --runs {E['RUNS']} --rounds {E['ROUNDS']} --warmup {E['WARMUP']}` "
  f"({E['BUILD']} release build; {E['ROUNDS']} interleaved hyperfine calls of {E['PER_ROUND']} runs per case)")
p(f"- machine: nproc {sh('nproc') or os.cpu_count()}; `{sh('uname', '-srm')}`; {sh('rustc', '-V')}; {sh(E['HYPERFINE'], '--version')}")
p(f"- load average: before `{E['LOAD_BEFORE']}`, after `{E['LOAD_AFTER']}`")
p(f"- FAIL lines in hook_execution.log: {E['FAILS']}; denials audited: {E['DENIES']}; repairs: {E['REPAIRS']}; canary rollup states appended: {E['ROLLUPS']}")
p("")
p("| case | /bin/true median ms | hook median ms | ratio | min ratio | budget |")
p("|---|---:|---:|---:|---:|---|")
for name in ("pre-read", "pre-ls", "pre-1kb", "post-1kb", "post-50mb", "pre-ls-canary", "pre-1kb-canary", "post-1kb-canary"):
    t, h = [], []
    for path in sorted(glob.glob(os.path.join(json_dir, f"{name}-*.json"))):
        for r in json.load(open(path))["results"]:
            (t if r["command"] == "true" else h).extend(r["times"])
    ratio = statistics.median(h) / statistics.median(t)
    mratio = min(h) / min(t)
    verdict = "met" if ratio <= 1.25 else f"**missed** by {100 * (ratio / 1.25 - 1):.0f}%"
    p(f"| {labels[name]} | {ms(statistics.median(t))} | {ms(statistics.median(h))} | "
      f"{ratio:.2f}× | {mratio:.2f}× | ≤ 1.25×: {verdict} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
echo "guard.sh: report written to $OUT" >&2
