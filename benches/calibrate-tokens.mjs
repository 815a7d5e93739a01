// Tokenizes a corpus per content kind with @anthropic-ai/tokenizer and prints characters per
// token and the spread. Run by benches/calibrate-tokens.sh, which installs what it needs.
//
// node calibrate-tokens.mjs --tokenizer NODE_MODULES --servers NODE_MODULES --corpus DIR [--json]

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const tokenizerDir = opt("--tokenizer");
const serversDir = opt("--servers");
const corpusDir = opt("--corpus");
const asJson = args.includes("--json");
if (!tokenizerDir || !serversDir || !corpusDir) {
  console.error("usage: calibrate-tokens.mjs --tokenizer DIR --servers DIR --corpus DIR [--json]");
  process.exit(2);
}

const require = createRequire(join(tokenizerDir, "noop.js"));
const { countTokens } = require("@anthropic-ai/tokenizer");
const tokenizerVersion = JSON.parse(
  readFileSync(join(tokenizerDir, "@anthropic-ai/tokenizer/package.json"), "utf8"),
).version;

// ---- MCP servers: tools/list as Claude Code would see it -------------------------------

const SERVERS = [
  { pkg: "@modelcontextprotocol/server-everything", name: "everything", args: [] },
  { pkg: "@modelcontextprotocol/server-memory", name: "memory", args: [] },
  { pkg: "@modelcontextprotocol/server-filesystem", name: "filesystem", args: ["<tmp>"] },
];

function binOf(pkg) {
  const dir = join(serversDir, pkg);
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const bin = typeof manifest.bin === "string" ? manifest.bin : Object.values(manifest.bin ?? {})[0];
  if (!bin) throw new Error(`${pkg} has no bin`);
  return { path: join(dir, bin), version: manifest.version };
}

function listTools(server, scratch) {
  const { path, version } = binOf(server.pkg);
  const argv = server.args.map((a) => (a === "<tmp>" ? scratch : a));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path, ...argv], { stdio: ["pipe", "pipe", "ignore"] });
    let buffer = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${server.pkg}: no tools/list answer in 20 s`));
    }, 20000);
    const send = (msg) => child.stdin.write(JSON.stringify(msg) + "\n");
    child.stdout.on("data", (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.id === 1) {
          send({ jsonrpc: "2.0", method: "notifications/initialized" });
          send({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} });
        } else if (msg.id === 2) {
          clearTimeout(timer);
          child.kill();
          resolve({ version, tools: msg.result?.tools ?? [] });
        } else if (msg.method === "roots/list" && msg.id !== undefined) {
          send({ jsonrpc: "2.0", id: msg.id, result: { roots: [{ uri: `file://${scratch}`, name: "scratch" }] } });
        }
      }
    });
    child.on("error", reject);
    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: { roots: { listChanged: true }, elicitation: {} },
        clientInfo: { name: "ctxopt-calibrate", version: "0" },
      },
    });
  });
}

// ---- Corpus -----------------------------------------------------------------------------

function frontMatter(text) {
  if (!text.startsWith("---\n")) return { meta: {}, body: text };
  const end = text.indexOf("\n---", 4);
  if (end < 0) return { meta: {}, body: text };
  const meta = {};
  for (const line of text.slice(4, end).split("\n")) {
    const m = /^([A-Za-z_-]+):\s*(.*)$/.exec(line);
    if (m) meta[m[1]] = m[2].replace(/^["']|["']$/g, "");
  }
  return { meta, body: text.slice(end + 4).replace(/^\n/, "") };
}

function corpus() {
  const skills = [];
  const memory = [];
  for (const entry of readdirSync(corpusDir).sort()) {
    const path = join(corpusDir, entry);
    if (statSync(path).isDirectory()) {
      const skill = join(path, "SKILL.md");
      skills.push({ name: entry, text: readFileSync(skill, "utf8") });
    } else if (entry.endsWith(".md")) {
      memory.push({ name: entry, text: readFileSync(path, "utf8") });
    }
  }
  return { skills, memory };
}

// ---- Measure ----------------------------------------------------------------------------

function measure(kind, samples) {
  const rows = samples.map(({ name, text }) => {
    const chars = [...text].length;
    const tokens = countTokens(text);
    return { name, chars, bytes: Buffer.byteLength(text), tokens, ratio: chars / tokens };
  });
  const chars = rows.reduce((a, r) => a + r.chars, 0);
  const bytes = rows.reduce((a, r) => a + r.bytes, 0);
  const tokens = rows.reduce((a, r) => a + r.tokens, 0);
  const ratios = rows.map((r) => r.ratio);
  const mean = ratios.reduce((a, r) => a + r, 0) / ratios.length;
  const sd = Math.sqrt(ratios.reduce((a, r) => a + (r - mean) ** 2, 0) / ratios.length);
  return {
    kind,
    samples: rows.length,
    chars,
    bytes,
    tokens,
    chars_per_token: chars / tokens,
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    stdev: sd,
    rows,
  };
}

const scratch = mkdtempSync(join(tmpdir(), "ctxopt-calib-"));
const toolJson = [];
const toolNames = [];
const servers = [];
try {
  for (const server of SERVERS) {
    const { version, tools } = await listTools(server, scratch);
    servers.push({ pkg: server.pkg, version, tools: tools.length });
    for (const tool of tools) {
      const def = { name: `mcp__${server.name}__${tool.name}`, description: tool.description ?? "", input_schema: tool.inputSchema };
      toolJson.push({ name: def.name, text: JSON.stringify(def) });
      toolNames.push({ name: def.name, text: `${def.name}\n` });
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
const { skills, memory } = corpus();
const listing = skills.map(({ name, text }) => {
  const { meta } = frontMatter(text);
  return { name, text: `- ${name}: ${meta.description ?? ""}\n` };
});
const bodies = skills.map(({ name, text }) => ({ name, text: frontMatter(text).body }));
// All names together, as they arrive (one list), to see the per-line cost without
// per-sample rounding.
const namesJoined = [{ name: "all tool names", text: toolNames.map((t) => t.text).join("") }];
const listingJoined = [{ name: "whole listing", text: listing.map((t) => t.text).join("") }];

const kinds = [
  measure("mcp-tool-json", toolJson),
  measure("mcp-tool-names", namesJoined),
  measure("skill-listing", listingJoined),
  measure("skill-listing-lines", listing),
  measure("skill-body", bodies),
  measure("memory-prose", memory),
];

const result = { tokenizer: `@anthropic-ai/tokenizer@${tokenizerVersion}`, node: process.version, servers, kinds };
if (asJson) {
  console.log(JSON.stringify(result, (k, v) => (k === "rows" ? undefined : v), 2));
} else {
  console.log(`tokenizer ${result.tokenizer}, node ${result.node}`);
  for (const s of servers) console.log(`server ${s.pkg}@${s.version}: ${s.tools} tools`);
  console.log("");
  console.log("kind                 samples    chars   tokens  chars/token   min    max   stdev");
  for (const k of kinds) {
    console.log(
      `${k.kind.padEnd(20)} ${String(k.samples).padStart(7)} ${String(k.chars).padStart(8)} ${String(k.tokens).padStart(8)}  ${k.chars_per_token.toFixed(2).padStart(11)} ${k.min.toFixed(2).padStart(6)} ${k.max.toFixed(2).padStart(6)} ${k.stdev.toFixed(2).padStart(7)}`,
    );
  }
}
