#!/usr/bin/env bash
# Whole-process latency and peak RSS of the hook binaries, against /bin/true.
#
#   benches/run.sh [--runs N] [--rounds K] [--warmup N] [--out FILE] [--skip-build]
#
# Builds the release binaries (static glibc, static musl where that target is installed, and
# dynamic on Linux; dynamic only elsewhere), sets
# up a temporary HOME and one temporary project per (scenario, hook) — scenario "empty" (no
# metrics file yet) and "1M" (a metrics.jsonl of 1,000,000 real records) — then runs
# `hyperfine -N --input FIXTURE` on /bin/true and each build of the hook (in K
# interleaved rounds), and measures each hook's peak RSS on a ~1 KB input. Prints a markdown
# report and writes it to FILE.
#
# Needs hyperfine >= 1.16 (for --input; `cargo install hyperfine@1.20.0 --locked`), python3, cargo,
# and /usr/bin/time (GNU time on Linux, BSD time on macOS) for an exact peak RSS.
# Never called by the tests or CI: process timings on shared runners are noise.
# Results and the reading of them: BENCHMARKS.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/run.sh [--runs N] [--rounds K] [--warmup N] [--out FILE] [--skip-build]

  --runs N      timed runs per command (default 300; use >= 200 for reported numbers)
  --rounds K    split the N runs into K hyperfine calls per hook (N/K runs each, after
                the warm-up), alternating the order of the commands, and merge the times
                (default 30). A shared VM's speed shifts in phases of 20-100 runs; one call
                per command lets a phase land on one command only. --rounds 1 is one plain
                `hyperfine --runs N` call per hook
  --warmup N    warm-up runs per command and call (default 20)
  --out FILE    where to write the markdown report (default target/bench/report.md);
                hyperfine's JSON exports go to FILE's directory, under json/
  --skip-build  reuse the release binaries already built
  -h, --help    this text

Budgets: PreToolUse and PostToolUse median <= 1.25 x /bin/true, SessionStart <= 5 x,
peak RSS <= 8 MiB.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=300
ROUNDS=30
WARMUP=20
OUT="$ROOT/target/bench/report.md"
SKIP_BUILD=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a value}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 2 ]] || { echo "run.sh: --runs must be an integer >= 2" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "run.sh: --rounds must be an integer >= 1" >&2; exit 2; }
[[ "$WARMUP" =~ ^[0-9]+$ ]] || { echo "run.sh: --warmup must be an integer" >&2; exit 2; }
if [[ "$RUNS" -lt 200 ]]; then
    echo "run.sh: note: --runs $RUNS < 200; fine for a smoke run, too few for BENCHMARKS.md" >&2
fi

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
JSON_DIR=$(dirname "$OUT")/json
mkdir -p "$JSON_DIR"

HYPERFINE=$(command -v hyperfine || true)
if [[ -z "$HYPERFINE" && -x "$HOME/.cargo/bin/hyperfine" ]]; then
    HYPERFINE="$HOME/.cargo/bin/hyperfine"
fi
if [[ -z "$HYPERFINE" ]] || ! "$HYPERFINE" --help | grep -q -- '--input'; then
    echo "run.sh: needs hyperfine >= 1.16 (with --input): cargo install hyperfine@1.20.0 --locked" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "run.sh: needs python3" >&2; exit 1; }

TRUE_BIN=/bin/true
[[ -x "$TRUE_BIN" ]] || TRUE_BIN=/usr/bin/true

# hook binary -> the fixture hyperfine feeds it
HOOKS=(ctxopt-pre-tool-use ctxopt-post-tool-use ctxopt-session-start)
fixture_of() {
    case "$1" in
        ctxopt-pre-tool-use) echo "$ROOT/fixtures/hooks/PreToolUse/bash.json" ;;
        ctxopt-post-tool-use) echo "$ROOT/fixtures/hooks/PostToolUse/bash.json" ;;
        ctxopt-session-start) echo "$ROOT/fixtures/hooks/SessionStart/startup.json" ;;
    esac
}

# ---- 1. build ------------------------------------------------------------------------------
OS=$(uname -s)
ARCH=$(uname -m)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VARIANTS=()     # "name:dir"
if [[ "$OS" == Linux ]]; then
    TRIPLE="$ARCH-unknown-linux-gnu"
    # An explicit --target keeps RUSTFLAGS off the host artifacts (proc macros such as
    # serde_derive cannot be built with +crt-static).
    if [[ "$SKIP_BUILD" -eq 0 ]]; then
        echo "==> static build: RUSTFLAGS=\"-C target-feature=+crt-static -C relocation-model=static\" cargo build --release --locked --target $TRIPLE" >&2
        (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
            cargo build --release --locked --target "$TRIPLE")
    fi
    VARIANTS+=("static:$TARGET_DIR/$TRIPLE/release")
    # The installer's first choice (benches/common.sh): static musl, where the target is
    # installed.
    # shellcheck source=benches/common.sh
    source "$ROOT/benches/common.sh"
    MUSL="$ARCH-unknown-linux-musl"
    if bench_has_target "$MUSL"; then
        if [[ "$SKIP_BUILD" -eq 0 ]]; then
            echo "==> static musl build: RUSTFLAGS=\"-C relocation-model=static\" cargo build --release --locked --target $MUSL" >&2
            bench_cargo_musl "$ROOT" "$MUSL"
        fi
        VARIANTS+=("musl:$TARGET_DIR/$MUSL/release")
    fi
fi
if [[ "$SKIP_BUILD" -eq 0 ]]; then
    echo "==> dynamic build: cargo build --release --locked" >&2
    (cd "$ROOT" && env -u RUSTFLAGS cargo build --release --locked)
fi
VARIANTS+=("dynamic:$TARGET_DIR/release")

if [[ "$SKIP_BUILD" -eq 0 ]]; then
    if commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
        BUILD_NOTE="built by this run from \`$commit\`"
        if [[ -n "$(git -C "$ROOT" status --porcelain -- lib hooks Cargo.toml Cargo.lock)" ]]; then
            BUILD_NOTE+=" plus uncommitted changes"
        fi
    else
        BUILD_NOTE="built by this run from $ROOT (not a git checkout)"
    fi
else
    BUILD_NOTE="reused (--skip-build); built $(date -u -r "${VARIANTS[${#VARIANTS[@]}-1]#*:}/${HOOKS[0]}" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo '?')"
fi
for v in "${VARIANTS[@]}"; do
    for h in "${HOOKS[@]}"; do
        [[ -x "${v#*:}/$h" ]] || { echo "run.sh: missing ${v#*:}/$h (build first)" >&2; exit 1; }
    done
done

# ---- 2. temporary HOME and projects --------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BENCH_HOME="$WORK/home"
mkdir -p "$BENCH_HOME"

# Runs a command with the hook environment Claude Code gives: a project dir, a HOME, no
# inherited session id.
in_project() {
    local project=$1
    shift
    env -u CLAUDE_CODE_SESSION_ID HOME="$BENCH_HOME" CLAUDE_PROJECT_DIR="$project" "$@"
}

# Seed: run every hook once on every fixture of its events, to get real records.
SEED="$WORK/seed"
mkdir -p "$SEED"
first_variant_dir=${VARIANTS[0]#*:}
for f in "$ROOT"/fixtures/hooks/PreToolUse/*.json; do
    in_project "$SEED" "$first_variant_dir/ctxopt-pre-tool-use" <"$f" >/dev/null
done
for f in "$ROOT"/fixtures/hooks/PostToolUse/*.json "$ROOT"/fixtures/hooks/PostToolUseFailure/*.json; do
    in_project "$SEED" "$first_variant_dir/ctxopt-post-tool-use" <"$f" >/dev/null
done
in_project "$SEED" "$first_variant_dir/ctxopt-session-start" \
    <"$ROOT/fixtures/hooks/SessionStart/startup.json" >/dev/null
SEED_DATA="$SEED/.claude/hooks/data"
[[ -s "$SEED_DATA/metrics.jsonl" ]] || { echo "run.sh: the seed runs wrote no metrics" >&2; exit 1; }

# 1,000,000 metrics lines by repeating the seed records (and hook_execution.log in the same
# proportion of lines per run), written once and copied per project.
BIG="$WORK/big-data"
mkdir -p "$BIG"
python3 - "$SEED_DATA" "$BIG" 1000000 <<'PY'
import os, sys
seed, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def replicate(src, dst, count):
    with open(src) as f:
        lines = f.read().splitlines(keepends=True)
    block = "".join(lines) * max(1, 4096 // len(lines))
    per_block = len(block.splitlines())
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        written = 0
        while written + per_block <= count:
            f.write(block)
            written += per_block
        f.write("".join((lines * (count // len(lines) + 1))[: count - written]))
    return count
m = len(open(os.path.join(seed, "metrics.jsonl")).readlines())
l = len(open(os.path.join(seed, "hook_execution.log")).readlines())
replicate(os.path.join(seed, "metrics.jsonl"), os.path.join(out, "metrics.jsonl"), n)
replicate(os.path.join(seed, "hook_execution.log"), os.path.join(out, "hook_execution.log"), n * l // m)
PY
BIG_BYTES=$(wc -c <"$BIG/metrics.jsonl" | tr -d ' ')
BIG_LINES=$(wc -l <"$BIG/metrics.jsonl" | tr -d ' ')

# make_project NAME SCENARIO -> path of a fresh project, its data dir empty or holding the 1M files
make_project() {
    local dir="$WORK/projects/$1"
    mkdir -p "$dir/.claude/hooks/data"
    chmod 700 "$dir/.claude/hooks/data"
    if [[ "$2" == 1M ]]; then
        cp "$BIG/metrics.jsonl" "$BIG/hook_execution.log" "$dir/.claude/hooks/data/"
    fi
    echo "$dir"
}

# ~1 KB inputs for the RSS check: the fixture padded in a field the hook reads.
INPUTS="$WORK/inputs"
mkdir -p "$INPUTS"
for h in "${HOOKS[@]}"; do
    python3 - "$(fixture_of "$h")" "$INPUTS/$h.json" <<'PY'
import json, sys
src, dst = sys.argv[1], sys.argv[2]
doc = json.load(open(src))
def size(d):
    return len(json.dumps(d).encode())
if "tool_input" in doc:
    doc["tool_input"].setdefault("description", "")
    while size(doc) < 1024:
        doc["tool_input"]["description"] += " and then some"
else:
    # Claude Code adds fields every release; the input is parsed leniently.
    doc["bench_padding"] = ""
    while size(doc) < 1024:
        doc["bench_padding"] += "x" * 16
open(dst, "w").write(json.dumps(doc) + "\n")
PY
done

# ---- 3. latency ----------------------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }
LOAD_BEFORE=$(loadavg)
FAILS=0
PER_ROUND=$(((RUNS + ROUNDS - 1) / ROUNDS))
[[ "$PER_ROUND" -ge 2 ]] || PER_ROUND=2
rm -f "$JSON_DIR"/*.json "$JSON_DIR"/*.log
for scenario in empty 1M; do
    for h in "${HOOKS[@]}"; do
        project=$(make_project "$scenario-$h" "$scenario")
        fixture=$(fixture_of "$h")
        cmds=(-n true "$TRUE_BIN")
        for v in "${VARIANTS[@]}"; do
            cmds+=(-n "${v%%:*}" "${v#*:}/$h")
        done
        echo "==> $scenario / $h ($(basename "$(dirname "$fixture")")/$(basename "$fixture"))" >&2
        for ((round = 1; round <= ROUNDS; round++)); do
            # Odd rounds run the commands in reverse order, so none is always first.
            args=("${cmds[@]}")
            if ((round % 2 == 0)); then
                args=()
                for ((i = ${#cmds[@]} - 3; i >= 0; i -= 3)); do args+=("${cmds[@]:i:3}"); done
            fi
            log="$JSON_DIR/$scenario-$h.round$round.log"
            if ! in_project "$project" "$HYPERFINE" -N --style basic \
                --warmup "$WARMUP" --runs "$PER_ROUND" --input "$fixture" \
                --export-json "$JSON_DIR/$scenario-$h.round$round.json" "${args[@]}" \
                >"$log" 2>&1; then
                cat "$log" >&2
                echo "run.sh: hyperfine failed; see above" >&2
                exit 1
            fi
            if ((ROUNDS == 1)); then cat "$log" >&2; else printf . >&2; fi
        done
        ((ROUNDS == 1)) || echo >&2
        # Every timed run must have been a clean one: no FAIL line in the log.
        fails=$(grep -c ' FAIL ' "$project/.claude/hooks/data/hook_execution.log" || true)
        if [[ "$fails" -ne 0 ]]; then
            echo "run.sh: $scenario/$h logged $fails failed runs; see $project" >&2
            FAILS=$((FAILS + fails))
        fi
    done
done
# One JSON per (scenario, hook), every round's times merged, in hyperfine's export shape.
python3 - "$JSON_DIR" <<'PY'
import glob, json, os, re, statistics, sys
json_dir = sys.argv[1]
merged = {}
for path in sorted(glob.glob(os.path.join(json_dir, "*.round*.json"))):
    key = re.sub(r"\.round\d+\.json$", "", os.path.basename(path))
    for r in json.load(open(path))["results"]:
        merged.setdefault(key, {}).setdefault(r["command"], []).extend(r["times"])
for key, commands in merged.items():
    results = []
    for command, times in commands.items():
        results.append({
            "command": command, "times": times, "mean": statistics.fmean(times),
            "stddev": statistics.stdev(times), "median": statistics.median(times),
            "min": min(times), "max": max(times),
        })
    json.dump({"results": results}, open(os.path.join(json_dir, key + ".json"), "w"))
PY
LOAD_AFTER=$(loadavg)

# ---- 4. peak RSS ---------------------------------------------------------------------------
RSS_JSON="$JSON_DIR/rss.json"
rss_specs=("—|${HOOKS[0]}|true|$TRUE_BIN|$INPUTS/${HOOKS[0]}.json|$WORK")
for scenario in empty 1M; do
    for h in "${HOOKS[@]}"; do
        project=$(make_project "rss-$scenario-$h" "$scenario")
        for v in "${VARIANTS[@]}"; do
            rss_specs+=("$scenario|$h|${v%%:*}|${v#*:}/$h|$INPUTS/$h.json|$project")
        done
    done
done
# ru_maxrss of a child forked by a big parent starts at the parent's RSS (the copied mm's
# high-water mark survives exec), so python's own wait4 would report python's ~14 MB for
# /bin/true. GNU time (Linux) and BSD time (macOS) are small parents: their floor is ~1 MB,
# shown by the /bin/true rows.
if /usr/bin/time -o /dev/null -f %M "$TRUE_BIN" 2>/dev/null; then
    RSS_TOOL=gnu-time
elif [[ "$OS" == Darwin ]]; then
    RSS_TOOL=bsd-time
else
    RSS_TOOL=wait4
    echo "run.sh: no GNU time; peak RSS from python's wait4 is an upper bound (python's RSS)" >&2
fi
HOME="$BENCH_HOME" RSS_TOOL="$RSS_TOOL" python3 - "$RSS_JSON" "${rss_specs[@]}" <<'PY'
import json, os, re, subprocess, sys, tempfile
out, specs = sys.argv[1], sys.argv[2:]
RUNS = 20
tool = os.environ["RSS_TOOL"]

def peak_kib(binary, inp, env):
    with open(inp, "rb") as stdin, tempfile.NamedTemporaryFile("r") as report:
        if tool == "gnu-time":
            cmd = ["/usr/bin/time", "-o", report.name, "-f", "%M", binary]
        elif tool == "bsd-time":
            cmd = ["/usr/bin/time", "-l", "-o", report.name, binary]
        else:
            cmd = [binary]
        p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.exit(f"run.sh: {binary} exited {p.returncode} on {inp}")
        text = report.read()
    if tool == "gnu-time":
        return int(text.strip().splitlines()[-1])
    if tool == "bsd-time":
        return int(re.search(r"(\d+)\s+maximum resident set size", text).group(1)) // 1024
    return usage.ru_maxrss

rows = []
for spec in specs:
    scenario, hook, build, binary, inp, project = spec.split("|")
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_CODE_SESSION_ID", "RSS_TOOL")}
    env["CLAUDE_PROJECT_DIR"] = project
    peaks = sorted(peak_kib(binary, inp, env) for _ in range(RUNS))
    rows.append({"scenario": scenario, "hook": hook, "build": build, "tool": tool,
                 "input_bytes": os.path.getsize(inp), "max_kib": peaks[-1],
                 "median_kib": peaks[len(peaks) // 2]})
json.dump(rows, open(out, "w"), indent=1)
PY

# ---- 5. report -----------------------------------------------------------------------------
BINS_INFO="$JSON_DIR/binaries.txt"
: >"$BINS_INFO"
for v in "${VARIANTS[@]}"; do
    for h in "${HOOKS[@]}"; do
        b="${v#*:}/$h"
        size=$(wc -c <"$b" | tr -d ' ')
        if command -v file >/dev/null; then
            link=$(file -b "$b" | grep -oE 'static-pie linked|statically linked|dynamically linked' | head -1 || true)
        elif command -v ldd >/dev/null && ldd "$b" 2>&1 | grep -q 'not a dynamic\|statically'; then
            link="statically linked"
        else
            link="?"
        fi
        echo "${v%%:*}|$h|$size|$link" >>"$BINS_INFO"
    done
done

FIXTURES=""
for h in "${HOOKS[@]}"; do FIXTURES+="$h=$(fixture_of "$h") "; done
BUILD_NOTE="$BUILD_NOTE" ROOT="$ROOT" RUNS="$RUNS" ROUNDS="$ROUNDS" PER_ROUND="$PER_ROUND" WARMUP="$WARMUP" HYPERFINE="$HYPERFINE" FIXTURES="$FIXTURES" \
LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" BIG_LINES="$BIG_LINES" BIG_BYTES="$BIG_BYTES" \
FAILS="$FAILS" RSS_TOOL="$RSS_TOOL" python3 - "$JSON_DIR" "$OUT" "$BINS_INFO" <<'PY'
import datetime, json, os, subprocess, sys
json_dir, out, bins_info = sys.argv[1:4]
E = os.environ
fixtures = dict(kv.split("=", 1) for kv in E["FIXTURES"].split())
fixtures = {h: os.path.relpath(p, E["ROOT"]) for h, p in fixtures.items()}
hooks = list(fixtures)
budget = {"ctxopt-pre-tool-use": 1.25, "ctxopt-post-tool-use": 1.25, "ctxopt-session-start": 5.0}
RSS_BUDGET_KIB = 8 * 1024

def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"

def verdict(value, limit):
    if value <= limit:
        return f"met ({(limit - value) / limit:.0%} headroom)"
    return f"**missed** by {(value - limit) / limit:.0%}"

def ms(seconds):
    return f"{seconds * 1000:.3f}"

lines = []
p = lines.append
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
p(f"## Results {now}")
p("")
rounds, per_round = int(E["ROUNDS"]), int(E["PER_ROUND"])
p(f"- command: `benches/run.sh --runs {E['RUNS']} --rounds {rounds} --warmup {E['WARMUP']}`: "
  + (f"one `hyperfine -N --warmup {E['WARMUP']} --runs {per_round} --input FIXTURE` per hook"
     if rounds == 1 else
     f"{rounds} calls of `hyperfine -N --warmup {E['WARMUP']} --runs {per_round} --input FIXTURE` "
     f"per hook, command order alternating, times merged ({rounds * per_round} runs per command)"))
p(f"- machine: nproc {sh('nproc') or os.cpu_count()}; `{sh('uname', '-a')}`")
p(f"- toolchain: {sh('rustc', '-V')}; {sh(E['HYPERFINE'], '--version')}")
p(f"- binaries: {E['BUILD_NOTE']}")
p(f"- load average (1/5/15 min): before `{E['LOAD_BEFORE']}`, after `{E['LOAD_AFTER']}`")
p(f"- 1M scenario: metrics.jsonl of {int(E['BIG_LINES']):,} lines "
  f"({int(E['BIG_BYTES']) / 1e6:.0f} MB) of real records; empty: no metrics file before warm-up")
p(f"- timed runs that logged FAIL: {E['FAILS']}")
p("")
p("### Latency")
p("")
p("ratio = median / median of /bin/true measured alongside (the budget's measure); "
  "min ratio = fastest run / fastest /bin/true run, which CPU contention disturbs least.")
p("")
p("| scenario | command | build | median ms | mean ± σ ms | min – max ms | ratio | min ratio | budget | verdict |")
p("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
for scenario in ("empty", "1M"):
    for h in hooks:
        data = json.load(open(os.path.join(json_dir, f"{scenario}-{h}.json")))
        results = {r["command"]: r for r in data["results"]}
        base, base_min = results["true"]["median"], results["true"]["min"]
        for build, r in results.items():
            is_hook = build != "true"
            ratio = r["median"] / base
            p(f"| {scenario} | {h if is_hook else '/bin/true'} | {build if is_hook else '—'} "
              f"| {ms(r['median'])} | {ms(r['mean'])} ± {ms(r['stddev'])} "
              f"| {ms(r['min'])} – {ms(r['max'])} | {ratio:.2f}× | {r['min'] / base_min:.2f}× "
              f"| {str(budget[h]) + '×' if is_hook else ''} "
              f"| {verdict(ratio, budget[h]) if is_hook else f'input {fixtures[h]}'} |")
p("")
p(f"### Peak RSS (~1 KB input, 20 runs each, measured with {E['RSS_TOOL']})")
p("")
p("| scenario | command | build | input bytes | max KiB | median KiB | budget | verdict |")
p("|---|---|---|---:|---:|---:|---:|---|")
for r in json.load(open(os.path.join(json_dir, "rss.json"))):
    is_hook = r["build"] != "true"
    p(f"| {r['scenario']} | {r['hook'] if is_hook else '/bin/true'} | {r['build'] if is_hook else '—'} "
      f"| {r['input_bytes']} | {r['max_kib']} | {r['median_kib']} "
      f"| {'8 MiB' if is_hook else ''} "
      f"| {verdict(r['max_kib'], RSS_BUDGET_KIB) if is_hook else ''} |")
p("")
p("### Binaries")
p("")
p("| build | binary | bytes | linkage |")
p("|---|---|---:|---|")
for row in open(bins_info).read().splitlines():
    build, h, size, link = row.split("|")
    p(f"| {build} | {h} | {int(size):,} | {link} |")
p("")
text = "\n".join(lines)
open(out, "w").write(text)
print(text)
PY
echo "run.sh: report written to $OUT; hyperfine JSON in $JSON_DIR" >&2
