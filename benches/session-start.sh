#!/usr/bin/env bash
# SessionStart's cost with a realistic context (issue 5): whole process, against /bin/true.
#
#   benches/session-start.sh [--runs N] [--rounds K] [--warmup N] [--out FILE] [--skip-build]
#                            [--bin-dir DIR] [--baseline FILE] [--scenario NAME]...
#
# Builds `ctxopt-session-start` in release mode (statically linked on Linux, as the
# installer does) into $CARGO_TARGET_DIR, then per scenario makes a temporary HOME and project:
#   skills     200 project skills (every 8th `disable-model-invocation: true`, every 20th with
#              a skill.json), 10 stdio MCP servers in .mcp.json (approved in
#              settings.local.json) with a matching .claude/hooks/data/mcp-cache.json (the
#              documented format, config_sha256 of the compact config JSON), 3 commands,
#              2 agents, a project and a user CLAUDE.md, project, local and user settings, a
#              small ~/.claude.json
#   skills-2mb the same with a 2 MB ~/.claude.json (30 projects' history, like a real one)
#   backup-due the skills project with the hourly backup due at every timed run: hyperfine's
#              --prepare (not timed) waits until the previous run's detached `ctxopt backup
#              create` has finished (its archive, then its lock), removes the backups and ages
#              the 10-minute request marker (it exists after a project's first backup); the
#              run itself lists the backup dir, sets the marker's time and spawns the backup
#   prepare-control  the skills project with the same --prepare step as backup-due, run on a
#              scratch directory: nothing is due. The prepare step leaves the CPU caches cold
#              for the timed run, which costs the hook more than /bin/true; backup-due minus
#              this control is the hand-off's own cost. The step is one small static program
#              (benches/prepare-backup-due.c, compiled with musl-gcc or cc) where a C compiler
#              is there; else, or with --prepare-shell, a shell script running find, ls, flock,
#              touch and rm, which cools the caches far more
# Waits until every file is 2 s old (the caches trust only settled stat keys), runs the hook
# twice (the first run writes the caches, the second is a warm run like every later session),
# counts its syscalls with `strace -c -f` (one warm run), then times /bin/true and the hook
# (and --baseline, another build of the hook, when given) with `hyperfine -N` in K rounds,
# the command order rotated every round. Budget: median <= 5 x the median of /bin/true.
#
# --bin-dir DIR     time DIR/ctxopt-session-start (implies --skip-build)
# --baseline FILE   also time FILE (an older build) in the same rounds
# --scenario NAME   skills, skills-2mb, backup-due or prepare-control (repeatable; default all)
# --keep            keep the temporary HOME and project (for perf, strace); prints where
# --prepare-shell   the backup-due prepare step as the shell script (the earlier method)
#
# Needs hyperfine >= 1.16 (`cargo install hyperfine@1.20.0 --locked`), python3, strace (optional).
# Never called by the tests or CI: process timings on shared runners are noise.
set -euo pipefail

usage() {
    sed -n '2,41p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=300
ROUNDS=30
WARMUP=10
OUT="$ROOT/target/bench/session-start.md"
SKIP_BUILD=0
PREPARE_SHELL=0
declare -A PREPARE_CMD=()
BIN_DIR=""
BASELINE=""
SCENARIOS=()
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a value}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        --prepare-shell) PREPARE_SHELL=1; shift ;;
        --bin-dir) BIN_DIR=${2:?--bin-dir needs a value}; SKIP_BUILD=1; shift 2 ;;
        --baseline) BASELINE=${2:?--baseline needs a value}; shift 2 ;;
        --scenario) SCENARIOS+=("${2:?--scenario needs a value}"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "session-start.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 2 ]] || { echo "session-start.sh: --runs must be an integer >= 2" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "session-start.sh: --rounds must be an integer >= 1" >&2; exit 2; }
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=(skills skills-2mb backup-due prepare-control)
for s in "${SCENARIOS[@]}"; do
    [[ "$s" == skills || "$s" == skills-2mb || "$s" == backup-due || "$s" == prepare-control ]] || { echo "session-start.sh: unknown scenario: $s" >&2; exit 2; }
done
if [[ -n "$BASELINE" ]]; then
    [[ -x "$BASELINE" ]] || { echo "session-start.sh: --baseline $BASELINE is not executable" >&2; exit 2; }
    BASELINE=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")
fi

mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
JSON_DIR=$(dirname "$OUT")/json-session-start
mkdir -p "$JSON_DIR"
rm -f "$JSON_DIR"/*.json "$JSON_DIR"/*.log "$JSON_DIR"/*.strace

HYPERFINE=$(command -v hyperfine || true)
[[ -z "$HYPERFINE" && -x "$HOME/.cargo/bin/hyperfine" ]] && HYPERFINE="$HOME/.cargo/bin/hyperfine"
if [[ -z "$HYPERFINE" ]] || ! "$HYPERFINE" --help | grep -q -- '--input'; then
    echo "session-start.sh: needs hyperfine >= 1.16 (with --input): cargo install hyperfine@1.20.0 --locked" >&2
    exit 1
fi
STRACE=$(command -v strace || true)
TRUE_BIN=/bin/true
[[ -x "$TRUE_BIN" ]] || TRUE_BIN=/usr/bin/true

# ---- build ---------------------------------------------------------------------------------
if [[ -n "$BIN_DIR" ]]; then
    BUILD="given ($BIN_DIR)"
else
    # The way install/install.sh builds: static musl where that Rust target is installed, else
    # static glibc (benches/common.sh).
    # shellcheck source=benches/common.sh
    source "$ROOT/benches/common.sh"
    bench_build "$ROOT" "$SKIP_BUILD" ctxopt-session-start ctxopt || exit 1
fi
HOOK="$BIN_DIR/ctxopt-session-start"
[[ -x "$HOOK" ]] || { echo "session-start.sh: missing $HOOK (build first)" >&2; exit 1; }
if [[ " ${SCENARIOS[*]} " == *" backup-due "* && ! -x "$BIN_DIR/ctxopt" ]]; then
    echo "session-start.sh: backup-due needs $BIN_DIR/ctxopt beside the hook (build it)" >&2
    exit 1
fi

# ---- temporary HOME and project per scenario -----------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-session-bench.XXXXXX")
if [[ "$KEEP" -eq 1 ]]; then
    trap 'echo "session-start.sh: kept $WORK (HOME=$WORK/<scenario>/home, project $WORK/<scenario>/project)" >&2' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi
SESSION=0b7c1f00-5f0e-4b7e-9d1a-000000000005

setup() {
    local scenario=$1 dir=$2
    mkdir -p "$dir"
    python3 - "$scenario" "$dir" "$SESSION" <<'PY'
import hashlib, json, os, sys
scenario, root, session = sys.argv[1:4]
home, p = os.path.join(root, "home"), os.path.join(root, "project")
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
def write_json(path, value):
    write(path, json.dumps(value, indent=2) + "\n")

# Skills: 200, every 8th hidden from the model, every 20th with the runbook's skill.json.
for i in range(200):
    d = os.path.join(p, ".claude", "skills", f"skill-{i:03d}")
    hidden = "disable-model-invocation: true\n" if i % 8 == 0 else ""
    body = "\n".join(f"Step {k}: do the thing number {k} carefully." for k in range(12))
    write(os.path.join(d, "SKILL.md"),
          f"---\nname: skill-{i:03d}\ndescription: Skill number {i} checks the module {i} and "
          f"reports what it finds, with examples.\nwhen_to_use: when module {i} is touched\n"
          f"{hidden}---\n# Skill {i}\n\n{body}\n")
    if i % 20 == 0:
        write_json(os.path.join(d, "skill.json"),
                   {"name": f"skill-{i:03d}", "disable-model-invocation": i % 8 == 0})
for name in ("standup", "review", "release"):
    write(os.path.join(p, ".claude", "commands", name + ".md"),
          f"---\ndescription: The {name} command\n---\nDo the {name}.\n")
for name in ("reviewer", "tester"):
    write(os.path.join(p, ".claude", "agents", name + ".md"),
          f"---\nname: {name}\ndescription: The {name} agent\n---\nYou are the {name}.\n")
write(os.path.join(p, "CLAUDE.md"), "# Project\n\nBuild with `make`. Tests: `make test`.\n" * 20)
write(os.path.join(home, ".claude", "CLAUDE.md"), "# Me\n\nPrefer short answers.\n")

# MCP: 10 stdio servers in .mcp.json, approved in settings.local.json.
servers = {f"srv{i}": {"command": "node", "args": [f"/opt/mcp/server-{i}.js", "--stdio"],
                        "env": {"LOG_LEVEL": "warn"}} for i in range(10)}
write_json(os.path.join(p, ".mcp.json"), {"mcpServers": servers})
write_json(os.path.join(p, ".claude", "settings.local.json"),
           {"enabledMcpjsonServers": sorted(servers), "permissions": {"allow": ["Bash(ls:*)"]}})
write_json(os.path.join(p, ".claude", "settings.json"),
           {"model": "opus", "permissions": {"allow": ["Read"]}})
write_json(os.path.join(home, ".claude", "settings.json"), {"model": "sonnet"})

# The MCP cache as `ctxopt mcp check` writes it (lib/src/mcp/cache.rs): config_sha256 is the
# SHA-256 of the compact JSON of the config object, keys in the order written.
cache = {"schema_version": 1, "servers": {}}
for i, (name, config) in enumerate(servers.items()):
    compact = json.dumps(config, separators=(",", ":"), ensure_ascii=False)
    n = 5 + 3 * i
    names = [f"tool_{k}_of_{name}" for k in range(n)]
    cache["servers"][name] = {
        "config_sha256": hashlib.sha256(compact.encode()).hexdigest(),
        "checked_at": "2026-11-25T10:00:00.000Z", "ok": True, "error": None,
        "tool_count": n, "tools_chars": 420 * n, "tool_names": names}
write_json(os.path.join(p, ".claude", "hooks", "data", "mcp-cache.json"), cache)

# ~/.claude.json: small, or 2 MB of the client's per-project history.
projects = {p: {"allowedTools": [], "history": [], "mcpServers": {}, "hasTrustDialogAccepted": True}}
if scenario == "skills-2mb":
    k = 0
    while True:
        size = len(json.dumps(projects))
        if size >= 2 * 1024 * 1024:
            break
        proj = f"/home/me/src/project-{k % 30}"
        entry = projects.setdefault(proj, {"allowedTools": [], "history": [], "mcpServers": {}})
        entry["history"].append({"display": f"please fix the failing test in module {k} " + "x" * 300,
                                 "pastedContents": {}})
        k += 1
write_json(os.path.join(home, ".claude.json"),
           {"numStartups": 42, "userID": "0" * 64, "mcpServers": {}, "projects": projects})
PY
    printf '{"session_id":"%s","transcript_path":"%s/t.jsonl","cwd":"%s","permission_mode":"default","hook_event_name":"SessionStart","source":"startup"}' \
        "$SESSION" "$dir" "$dir/project" >"$dir/start.json"
}

in_project() {
    local dir=$1
    shift
    env -u CLAUDE_CODE_SESSION_ID -u CLAUDE_CONFIG_DIR HOME="$dir/home" CLAUDE_PROJECT_DIR="$dir/project" "$@"
}

for s in "${SCENARIOS[@]}"; do
    setup "$s" "$WORK/$s"
done
sleep 2.2 # every file settled (2 s), so the caches trust their stat keys
for s in "${SCENARIOS[@]}"; do
    for bin in "$HOOK" ${BASELINE:+"$BASELINE"}; do
        for _ in 1 2; do
            in_project "$WORK/$s" "$bin" <"$WORK/$s/start.json" >/dev/null
        done
    done
    DATA="$WORK/$s/project/.claude/hooks/data"
    if grep -q '"type":"error"' "$DATA/metrics.jsonl" 2>/dev/null; then
        grep '"type":"error"' "$DATA/metrics.jsonl" | head -3 >&2
        echo "session-start.sh: the warm-up recorded errors (an invalid fixture?)" >&2
        exit 1
    fi
    if grep -q ' FAIL ' "$DATA/hook_execution.log" 2>/dev/null; then
        grep ' FAIL ' "$DATA/hook_execution.log" >&2
        echo "session-start.sh: a warm-up run failed" >&2
        exit 1
    fi
    python3 - "$DATA/metrics.jsonl" "$s" <<'PY' || exit 1
import json, sys
path, scenario = sys.argv[1:3]
records = [json.loads(l) for l in open(path) if '"token_consumption"' in l]
if not records:
    sys.exit(f"session-start.sh: {scenario}: no token_consumption record")
last = records[-1]
comp = last.get("components") or last.get("data", {}).get("components") or {}
mcp = [k for k in comp if k.startswith("mcp:")]
if len(mcp) != 10:
    sys.exit(f"session-start.sh: {scenario}: expected 10 MCP servers in the estimate, got {sorted(mcp)}")
print(f"{scenario}: estimate {json.dumps(comp, sort_keys=True)}", file=sys.stderr)
PY
    if [[ -n "$STRACE" ]]; then
        for pair in "hook:$HOOK" ${BASELINE:+"baseline:$BASELINE"}; do
            name=${pair%%:*}
            bin=${pair#*:}
            in_project "$WORK/$s" "$STRACE" -f -c -o "$JSON_DIR/$s-$name.strace" "$bin" \
                <"$WORK/$s/start.json" >/dev/null
        done
    fi
done

# ---- latency -------------------------------------------------------------------------------
# The warm-up runs above may have started hourly backups (detached, idle priority): let them
# finish (up to 60 s) so that the first scenario's timed runs do not share the machine with them.
for ((i = 0; i < 1200; i++)); do
    pgrep -f "backup create --project $WORK/" >/dev/null 2>&1 || break
    sleep 0.05
done
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }
LOAD_BEFORE=$(loadavg)
PER_ROUND=$(((RUNS + ROUNDS - 1) / ROUNDS))
[[ "$PER_ROUND" -ge 2 ]] || PER_ROUND=2
for s in "${SCENARIOS[@]}"; do
    if [[ "$s" == backup-due ]]; then
        # Before each timed run (not timed): the previous run's detached `ctxopt backup create`
        # has finished — when that run set the request marker (it is then seconds old), wait
        # until its archive is there, then for its lock, since it may not hold the lock yet —
        # so that no timed run overlaps the previous one's backup (a project makes one an
        # hour). Then the backups are removed and the marker aged past its 10 minutes; it is
        # not removed: after a project's first backup it always exists, and the hourly request
        # only sets its time.
        data="$WORK/$s/project/.claude/hooks/data"
        backups="$WORK/$s/project/.kiro/specs/context-optimization/backup"
    fi
    if [[ "$s" == prepare-control ]]; then
        # The same commands on a scratch directory the hook never looks at.
        data="$WORK/$s/scratch/data"
        backups="$WORK/$s/scratch/backup"
        mkdir -p "$data/state"
    fi
    if [[ "$s" == backup-due || "$s" == prepare-control ]]; then
        # One small static process (benches/prepare-backup-due.c) where a C compiler is there:
        # the shell and five tools of the script below left the CPU caches cold for the timed
        # run. --prepare-shell keeps the script, as the earlier measurements ran it.
        if [[ "$PREPARE_SHELL" -eq 0 && ! -x "$WORK/prepare-backup-due" ]]; then
            for cc in musl-gcc cc; do
                command -v "$cc" >/dev/null || continue
                "$cc" -O2 -static -o "$WORK/prepare-backup-due" "$ROOT/benches/prepare-backup-due.c" 2>/dev/null && break
            done
        fi
        if [[ "$PREPARE_SHELL" -eq 0 && -x "$WORK/prepare-backup-due" ]]; then
            PREPARE_CMD[$s]="$WORK/prepare-backup-due $data $backups $WORK/$s/project"
        else
            PREPARE_CMD[$s]="sh $WORK/$s/prepare.sh"
        fi
        cat >"$WORK/$s/prepare.sh" <<PREPARE
if [ -n "\$(find '$data/state/backup-requested' -newermt '-5 seconds' 2>/dev/null)" ]; then
    i=0
    while ! ls '$backups'/backup-*-*.tar.gz >/dev/null 2>&1 && [ \$i -lt 1000 ]; do
        sleep 0.005
        i=\$((i + 1))
    done
fi
flock '$data/backup.lock' true
touch -d '-11 minutes' '$data/state/backup-requested'
rm -rf '$backups'
PREPARE
    fi
    cmds=("true:$TRUE_BIN" "hook:$HOOK")
    [[ -n "$BASELINE" ]] && cmds+=("baseline:$BASELINE")
    n=${#cmds[@]}
    for ((round = 1; round <= ROUNDS; round++)); do
        args=()
        for ((k = 0; k < n; k++)); do
            c=${cmds[$(((k + round) % n))]}
            args+=(-n "${c%%:*}" "${c#*:}")
        done
        log="$JSON_DIR/$s-$round.log"
        prepare=()
        if [[ "$s" == backup-due || "$s" == prepare-control ]]; then
            prepare=(--prepare "${PREPARE_CMD[$s]}")
        fi
        if ! in_project "$WORK/$s" "$HYPERFINE" -N --style basic --warmup "$WARMUP" --runs "$PER_ROUND" \
            "${prepare[@]}" --input "$WORK/$s/start.json" --export-json "$JSON_DIR/$s-$round.json" "${args[@]}" >"$log" 2>&1; then
            cat "$log" >&2
            echo "session-start.sh: hyperfine failed; see above" >&2
            exit 1
        fi
    done
    if grep -q ' FAIL ' "$WORK/$s/project/.claude/hooks/data/hook_execution.log"; then
        echo "session-start.sh: $s: a timed run failed (FAIL in hook_execution.log)" >&2
        exit 1
    fi
    if [[ "$s" == backup-due ]]; then
        # The last timed run's detached backup: it must exist, or the runs measured no spawn.
        flock "$WORK/$s/project/.claude/hooks/data/backup.lock" true
        if ! ls "$WORK/$s/project/.kiro/specs/context-optimization/backup/"backup-*.tar.gz >/dev/null 2>&1; then
            echo "session-start.sh: backup-due: the timed runs started no backup" >&2
            exit 1
        fi
    fi
    printf '%s ' "$s" >&2
done
echo >&2
LOAD_AFTER=$(loadavg)

PREPARE_KIND="none"
for s in "${SCENARIOS[@]}"; do
    case "${PREPARE_CMD[$s]:-}" in
        "") ;;
        sh\ *) PREPARE_KIND="the shell script (sh, find, ls, flock, touch, rm)" ;;
        *) PREPARE_KIND="one static program (benches/prepare-backup-due.c)" ;;
    esac
done
ROOT="$ROOT" RUNS="$RUNS" ROUNDS="$ROUNDS" PER_ROUND="$PER_ROUND" WARMUP="$WARMUP" \
PREPARE_KIND="$PREPARE_KIND" \
HYPERFINE="$HYPERFINE" BUILD="$BUILD" LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" \
SCENARIOS="${SCENARIOS[*]}" HOOK="$HOOK" BASELINE="$BASELINE" \
python3 - "$JSON_DIR" "$OUT" <<'PY'
import datetime, glob, json, os, re, statistics, subprocess, sys
json_dir, out = sys.argv[1:3]
E = os.environ
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
labels = {"skills": "200 skills, 10 MCP servers",
          "skills-2mb": "200 skills, 10 MCP servers, 2 MB ~/.claude.json",
          "backup-due": "200 skills, 10 MCP servers, hourly backup due",
          "prepare-control": "200 skills, 10 MCP servers, nothing due, backup-due's prepare step (control)"}
ms = lambda s: f"{s * 1000:.3f}"
lines = []
p = lines.append
p(f"## SessionStart with 200 skills and 10 MCP servers, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
p("")
p(f"- command: `benches/session-start.sh --runs {E['RUNS']} --rounds {E['ROUNDS']} --warmup {E['WARMUP']}` "
  f"({E['BUILD']} release build; {E['ROUNDS']} hyperfine calls of {E['PER_ROUND']} runs per command, order rotated)")
p(f"- hook: `{E['HOOK']}`" + (f"; baseline: `{E['BASELINE']}`" if E["BASELINE"] else ""))
if E["PREPARE_KIND"] != "none":
    p(f"- backup-due / control prepare step: {E['PREPARE_KIND']}")
p(f"- machine: nproc {sh('nproc') or os.cpu_count()}; `{sh('uname', '-srm')}`; {sh('rustc', '-V')}; {sh(E['HYPERFINE'], '--version')}")
p(f"- load average: before `{E['LOAD_BEFORE']}`, after `{E['LOAD_AFTER']}`")
p("")
p("ratio = median / median of /bin/true in the same rounds (the budget's measure); "
  "min ratio = fastest run / fastest /bin/true run, which CPU contention disturbs least.")
p("")
p("| scenario | command | median ms | mean ± σ ms | min ms | ratio | min ratio | syscalls | budget 5× |")
p("|---|---|---:|---:|---:|---:|---:|---:|---|")
def syscalls(scenario, name):
    path = os.path.join(json_dir, f"{scenario}-{name}.strace")
    try:
        text = open(path).read()
    except OSError:
        return None, ""
    total = None
    for line in text.splitlines():
        if line.strip().endswith("total"):
            fields = line.split()
            total = int(fields[3]) if len(fields) >= 5 else None
    return total, text
straces = []
for scenario in E["SCENARIOS"].split():
    times = {}
    for path in sorted(glob.glob(os.path.join(json_dir, f"{scenario}-*.json"))):
        for r in json.load(open(path))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    t = times["true"]
    for name in ("true", "hook", "baseline"):
        if name not in times:
            continue
        h = times[name]
        ratio = statistics.median(h) / statistics.median(t)
        mratio = min(h) / min(t)
        calls, text = syscalls(scenario, name)
        if text:
            straces.append((scenario, name, text))
        verdict = "" if name == "true" else (
            f"met ({100 * (1 - ratio / 5):.0f}% headroom)" if ratio <= 5 else f"**missed** by {100 * (ratio / 5 - 1):.0f}%")
        label = {"true": "/bin/true", "hook": "ctxopt-session-start", "baseline": "baseline"}[name]
        p(f"| {labels[scenario]} | {label} | {ms(statistics.median(h))} | "
          f"{ms(statistics.mean(h))} ± {ms(statistics.stdev(h))} | {ms(min(h))} | "
          f"{ratio:.2f}× | {mratio:.2f}× | {calls if calls is not None else ''} | {verdict} |")
p("")
medians = {}
for scenario in E["SCENARIOS"].split():
    hook = []
    for path in sorted(glob.glob(os.path.join(json_dir, f"{scenario}-*.json"))):
        for r in json.load(open(path))["results"]:
            if r["command"] == "hook":
                hook.extend(r["times"])
    if hook:
        medians[scenario] = statistics.median(hook)
if "backup-due" in medians and "prepare-control" in medians:
    p(f"The hand-off's own cost (backup-due median − control median, same prepare step): "
      f"{(medians['backup-due'] - medians['prepare-control']) * 1000:+.3f} ms.")
    if "skills" in medians:
        p(f"The prepare step's cost to the hook (control median − skills median): "
          f"{(medians['prepare-control'] - medians['skills']) * 1000:+.3f} ms.")
    p("")
for scenario, name, text in straces:
    p(f"<details><summary>strace -c -f, {labels[scenario]}, {name}</summary>")
    p("")
    p("```")
    p(text.rstrip())
    p("```")
    p("</details>")
    p("")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
echo "session-start.sh: report written to $OUT" >&2
