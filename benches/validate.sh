#!/usr/bin/env bash
# Whole-process time of `ctxopt validate` on a large, realistic config set (issue 3: target
# median <= 50 ms).
#
#   benches/validate.sh [--runs N] [--warmup N] [--skills N] [--bin PATH] [--skip-build]
#
# Generates, in a temporary directory, a HOME and a project with every settings scope —
# project .claude/settings.json and settings.local.json, ~/.claude/settings.json, a
# managed-settings.json —, 10 MCP servers (.mcp.json and ~/.claude.json), canary.json,
# ctxopt.json and N skills (default 200, each .claude/skills/<name>/SKILL.md), checks that
# `ctxopt validate` finds them all clean, then times two commands with hyperfine -N:
#   discovery: `ctxopt validate` (no paths: what a user runs; the managed file is not in
#              /etc/claude-code, so discovery cannot see it — this script never writes there)
#   named:     `ctxopt validate <every generated file>` (the managed file included)
# Needs hyperfine (`cargo install hyperfine@1.20.0 --locked`) and cargo. Never called by the tests or
# CI: process timings on shared runners are noise. Results: BENCHMARKS.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/validate.sh [--runs N] [--warmup N] [--skills N] [--bin PATH] [--skip-build]

  --runs N      timed runs per command (default 100; at least 50)
  --warmup N    warm-up runs per command (default 10)
  --skills N    skills to generate (default 200)
  --bin PATH    the ctxopt binary to time (default: the release build, built first)
  --skip-build  reuse the release build
  -h, --help    this text

Target (issue 3): median <= 50 ms for the full validate.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=100
WARMUP=10
SKILLS=200
BIN=""
SKIP_BUILD=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --skills) SKILLS=${2:?--skills needs a value}; shift 2 ;;
        --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "validate.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 50 ]] || { echo "validate.sh: --runs must be an integer >= 50" >&2; exit 2; }
[[ "$WARMUP" =~ ^[0-9]+$ ]] || { echo "validate.sh: --warmup must be an integer" >&2; exit 2; }
[[ "$SKILLS" =~ ^[0-9]+$ ]] || { echo "validate.sh: --skills must be an integer" >&2; exit 2; }

HYPERFINE=$(command -v hyperfine || true)
if [[ -z "$HYPERFINE" && -x "$HOME/.cargo/bin/hyperfine" ]]; then
    HYPERFINE="$HOME/.cargo/bin/hyperfine"
fi
[[ -n "$HYPERFINE" ]] || { echo "validate.sh: needs hyperfine: cargo install hyperfine@1.20.0 --locked" >&2; exit 1; }

# ---- 1. the binary ---------------------------------------------------------------------------
if [[ -z "$BIN" ]]; then
    TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    if [[ "$SKIP_BUILD" -eq 0 ]]; then
        echo "==> cargo build --release --locked --bin ctxopt" >&2
        (cd "$ROOT" && cargo build --release --locked -p ctxopt-hooks --bin ctxopt)
    fi
    BIN="$TARGET_DIR/release/ctxopt"
fi
[[ -x "$BIN" ]] || { echo "validate.sh: no executable $BIN (build first or pass --bin)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ---- 2. the config set -----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-validate-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
H="$WORK/home"
P="$WORK/project"
MANAGED="$WORK/managed"
mkdir -p "$H/.claude" "$P/.claude/skills" "$MANAGED"

# A settings file with hooks on the common events; commands that exist, valid regex matchers.
settings() {
    cat <<EOF
{
  "\$schema": "https://json.schemastore.org/claude-code-settings.json",
  "model": "claude-sonnet-4-5",
  "permissions": {
    "allow": ["Bash(git status)", "Bash(cargo test:*)", "Read(./src/**)"],
    "deny": ["Read(./.env)", "Bash(rm -rf:*)"],
    "defaultMode": "default"
  },
  "env": {"RUST_LOG": "info"},
  "enableAllProjectMcpServers": false,
  "enabledMcpjsonServers": ["server-1", "server-2"],
  "disabledMcpjsonServers": ["server-10"],
  "hooks": {
    "SessionStart": [{"hooks": [{"type": "command", "command": "/bin/true", "timeout": 10}]}],
    "PreToolUse": [
      {"matcher": "Bash", "hooks": [{"type": "command", "command": "/bin/true", "timeout": 5}]},
      {"matcher": "Edit|Write|MultiEdit", "hooks": [{"type": "command", "command": "/bin/true"}]},
      {"matcher": "mcp__.*", "hooks": [{"type": "command", "command": "/bin/true"}]}
    ],
    "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": "/bin/true", "timeout": 10}]}],
    "Stop": [{"hooks": [{"type": "command", "command": "/bin/true"}]}]
  }
}
EOF
}
settings >"$P/.claude/settings.json"
settings >"$P/.claude/settings.local.json"
settings >"$H/.claude/settings.json"
settings >"$MANAGED/managed-settings.json"

mcp_servers() {
    local i sep=""
    for i in $(seq 1 10); do
        if ((i % 2)); then
            printf '%s\n    "server-%d": {"type": "stdio", "command": "npx", "args": ["-y", "@example/server-%d"], "env": {"LEVEL": "%d"}}' "$sep" "$i" "$i" "$i"
        else
            printf '%s\n    "server-%d": {"type": "http", "url": "https://mcp%d.example.com/mcp", "headers": {"X-Team": "t%d"}}' "$sep" "$i" "$i" "$i"
        fi
        sep=","
    done
}
printf '{\n  "mcpServers": {%s\n  }\n}\n' "$(mcp_servers)" >"$P/.mcp.json"
printf '{\n  "numStartups": 12,\n  "mcpServers": {%s\n  },\n  "projects": {\n    "%s": {"mcpServers": {}, "allowedTools": []}\n  }\n}\n' \
    "$(mcp_servers)" "$P" >"$H/.claude.json"

cat >"$P/.claude/canary.json" <<'EOF'
{"enabled": true, "percentage": 10, "duration_minutes": 60, "metrics_threshold": {"error_rate": 0.05, "latency_p95": 500}}
EOF
cat >"$P/.claude/ctxopt.json" <<'EOF'
{"limits": {"mode": "warn", "initial_tokens_warning": 40000, "initial_tokens_critical": 50000, "max_mcp_servers": 8},
 "retention": {"metrics_days": 30}}
EOF

for i in $(seq -w 1 "$SKILLS"); do
    mkdir -p "$P/.claude/skills/skill-$i"
    cat >"$P/.claude/skills/skill-$i/SKILL.md" <<EOF
---
name: skill-$i
description: Generated skill number $i for the validate benchmark. Use it when the task mentions topic $i.
allowed-tools: Read, Grep, Glob
---
# Skill $i

Steps for topic $i:
1. Read the relevant files.
2. Summarise what you found.
EOF
done

export HOME="$H"
unset CLAUDE_CONFIG_DIR CLAUDE_PROJECT_DIR
cd "$P"

# ---- 3. check, then time ---------------------------------------------------------------------
NAMED=(".claude/settings.json" ".claude/settings.local.json" ".mcp.json" ".claude/canary.json"
    ".claude/ctxopt.json" "$H/.claude/settings.json" "$H/.claude.json" "$MANAGED/managed-settings.json")
for dir in .claude/skills/*/; do
    NAMED+=("${dir}SKILL.md")
done

for args in "" "${NAMED[*]}"; do
    # shellcheck disable=SC2086 # word splitting of the file list is intended (no spaces in it)
    if ! summary=$("$BIN" validate $args | tail -1); then
        echo "validate.sh: the generated files are not clean:" >&2
        # shellcheck disable=SC2086
        "$BIN" validate $args >&2 || true
        exit 1
    fi
    label="(discovery)"
    [[ -z "$args" ]] || label="<${#NAMED[@]} named files>"
    echo "==> ctxopt validate $label: $summary" >&2
done

printf -v named_cmd '%q ' "$BIN" validate "${NAMED[@]}"
"$HYPERFINE" -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/hyperfine.json" \
    --command-name "ctxopt validate (discovery)" "$BIN validate" \
    --command-name "ctxopt validate (${#NAMED[@]} named files)" "$named_cmd"

# Medians, the number the target is about (hyperfine's summary shows means).
if command -v python3 >/dev/null; then
    python3 - "$WORK/hyperfine.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    verdict = "within" if r["median"] <= 0.050 else "OVER"
    print(f"median {r['median'] * 1000:6.2f} ms  (min {r['min'] * 1000:.2f}, max {r['max'] * 1000:.2f}, "
          f"{len(r['times'])} runs)  {r['command']}  [{verdict} the 50 ms target]")
PY
fi
