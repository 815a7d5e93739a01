#!/usr/bin/env bash
# Calibrates ctxopt's characters-per-token constants (lib/src/budget/estimate.rs) against
# Anthropic's published tokenizer (@anthropic-ai/tokenizer@0.0.4, an older tokenizer: a
# reference, not the truth — see benches/TOKENS.md).
#
# What it tokenizes:
#   - real MCP tool definitions: the tools/list answers of @modelcontextprotocol/server-*
#     packages, started with plain `node` (no npx) and asked with the capabilities Claude Code
#     declares (roots, elicitation); each tool as the API sees it, {name, description,
#     input_schema} JSON, and each tool's `mcp__<server>__<tool>` name line;
#   - the corpus in fixtures/budget/corpus/: SKILL.md files (their listing lines
#     `- name: description`, and their bodies) and CLAUDE.md files (memory prose).
#
# The MCP servers come from target/ci-node/node_modules when present (the CI installs them
# there); otherwise they are installed into the temporary prefix with the tokenizer.
# Nothing is installed outside a temporary directory, which is removed at exit.
#
# Usage: benches/calibrate-tokens.sh [--json] [--servers DIR]
#   --json         print the machine-readable result only
#   --servers DIR  a node_modules directory holding @modelcontextprotocol/server-*
# Needs: node >= 18, npm, network access to the npm registry (or a warm npm cache).
set -euo pipefail

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

json=""
servers=""
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json="--json" ;;
    --servers) servers="${2:?--servers needs a directory}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "calibrate-tokens.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$(mktemp -d "${TMPDIR:-/tmp}/ctxopt-tokens.XXXXXX")"
trap 'rm -rf "$prefix"' EXIT

packages=(@modelcontextprotocol/server-everything @modelcontextprotocol/server-memory @modelcontextprotocol/server-filesystem)

if [ -z "$servers" ] && [ -d "$root/target/ci-node/node_modules/@modelcontextprotocol" ]; then
  servers="$root/target/ci-node/node_modules"
fi
install=(@anthropic-ai/tokenizer@0.0.4)
if [ -z "$servers" ]; then
  install+=("${packages[@]}")
  servers="$prefix/node_modules"
fi

echo "installing ${install[*]} into $prefix" >&2
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${install[@]}" >&2

node "$root/benches/calibrate-tokens.mjs" \
  --tokenizer "$prefix/node_modules" \
  --servers "$servers" \
  --corpus "$root/fixtures/budget/corpus" \
  $json
