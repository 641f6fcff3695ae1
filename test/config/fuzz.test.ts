import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { stringify } from "yaml";
import { effectiveSettings, loadConfig } from "../../src/config/load.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import { GlobalConfigSchema, WorkspaceFileSchema } from "../../src/config/schema.ts";
import { ConfigError } from "../../src/core/errors.ts";

/**
 * Whatever is in the files, the loader either returns a valid config or
 * throws a ConfigError (exit 125) naming the file: never anything else.
 * The generator is seeded, so a failure reproduces with its case number.
 */

const SEED = 0x5eed_c0de;
const CASES = 600;

/** mulberry32: small, fast, good enough to shake a parser. */
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, items: readonly T[]): T => items[int(r, items.length)] as T;

const KEYS = [
  "images", "env", "container", "security", "agents", "paths", "network", "workspace",
  "timeout", "memory", "cpus", "pids", "seccomp", "read_only_root", "user", "cap_add",
  "allow", "block", "remove", "image", "setup", "egress", "mask", "protect", "persist_state",
  "default", "python", "claude", "__proto__", "constructor", "toString", "", " ", "a.b", "ключ",
];

const SCALARS: readonly unknown[] = [
  "4g", "4XB", "30m", "soon", "bridge", "none", "host", "/work", "~/x", "CAP_NET_ADMIN", "NET_ADMIN",
  "", " ", "yes", "no", "null", "~", "0", "-1", "1e309", "NaN", ".inf", "\u0000", "💥", "a: b", "- x",
  0, -1, 1.5, 512, 1e308, Number.MAX_SAFE_INTEGER, true, false, null,
];

function randomValue(r: Random, depth: number): unknown {
  const roll = r();
  if (depth > 4 || roll < 0.45) return pick(r, SCALARS);
  if (roll < 0.6) return Array.from({ length: int(r, 4) }, () => randomValue(r, depth + 1));
  const out: Record<string, unknown> = {};
  for (let i = int(r, 5); i > 0; i--) {
    Object.defineProperty(out, pick(r, KEYS), {
      value: randomValue(r, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const VALID_GLOBAL = `images:
  python: python:3.13-slim
  default: debian:bookworm-slim
env:
  allow: [MY_*]
container:
  timeout: 45m
  network: none
security:
  memory: 2g
  cpus: 1.5
  cap_add: [CAP_NET_ADMIN]
agents:
  claude:
    env: [ANTHROPIC_API_KEY]
    persist_state: true
network:
  egress: [api.anthropic.com]
`;

const VALID_WORKSPACE = `image: node:22
setup:
  - npm ci
env:
  NODE_ENV: test
network: none
timeout: 10m
`;

const NOISE = [":", "-", "[", "]", "{", "}", "&a", "*a", "!!binary", "!tag", "? ", "|", ">", "#", "'", '"', "\t", "\n", "  ", "%YAML 1.2\n", "---\n", "...\n", "<<: *a\n"];

function garble(r: Random, text: string): string {
  let out = text;
  for (let i = 1 + int(r, 4); i > 0; i--) {
    const at = int(r, out.length + 1);
    switch (int(r, 5)) {
      case 0:
        out = out.slice(0, at); // truncation
        break;
      case 1:
        out = out.slice(0, at) + pick(r, NOISE) + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at + 1 + int(r, 8));
        break;
      case 3:
        out = out.slice(0, at) + String.fromCharCode(int(r, 0x3000)) + out.slice(at);
        break;
      default:
        out = out.replace(/\n {2}/, "\n" + " ".repeat(int(r, 5)));
    }
  }
  return out;
}

function randomBytes(r: Random): string {
  const bytes = Uint8Array.from({ length: int(r, 200) }, () => int(r, 256));
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

/** A valid file with one value swapped for something of another type. */
function wrongType(r: Random, text: string): string {
  const lines = text.split("\n");
  const candidates = lines.map((line, index) => [line, index] as const).filter(([line]) => /:\s*\S/.test(line));
  const [line, index] = pick(r, candidates);
  const value = stringify(randomValue(r, 3), { lineWidth: 0 }).trim().split("\n")[0] ?? "";
  lines[index] = line.replace(/:\s*\S.*$/, `: ${value}`);
  return lines.join("\n");
}

function generate(r: Random, valid: string): string {
  switch (int(r, 5)) {
    case 0:
      return stringify(randomValue(r, 0));
    case 1:
      return stringify(randomValue(r, 0)).slice(0, int(r, 200));
    case 2:
      return garble(r, valid);
    case 3:
      return randomBytes(r);
    default:
      return wrongType(r, valid);
  }
}

const HOME = "/home/fuzz";
const WORKSPACE = "/src/project";
const XDG = `${HOME}/.config/sandbox/config.yaml`;
const LEGACY = `${HOME}/.sandbox/config.yaml`;
const EXPLICIT = "/etc/sandbox/fuzz.yaml";
const WORKSPACE_FILE = `${WORKSPACE}/.sandbox.yml`;

interface Case {
  files: Record<string, string>;
  env: Record<string, string>;
  /** The file that holds the generated text. */
  target: string;
}

function makeCase(r: Random): Case {
  const target = pick(r, [XDG, LEGACY, EXPLICIT, WORKSPACE_FILE]);
  const files: Record<string, string> = {};
  files[target] = generate(r, target === WORKSPACE_FILE ? VALID_WORKSPACE : VALID_GLOBAL);
  // Sometimes put a valid sibling next to it, so layering is exercised too.
  if (target !== XDG && target !== EXPLICIT && r() < 0.5) files[XDG] = VALID_GLOBAL;
  if (target !== WORKSPACE_FILE && r() < 0.5) files[WORKSPACE_FILE] = VALID_WORKSPACE;
  return { files, env: target === EXPLICIT ? { SANDBOX_CONFIG: EXPLICIT } : {}, target };
}

describe("config loader fuzz", () => {
  const random = rng(SEED);
  const outcomes = { valid: 0, rejected: 0 };

  for (let n = 0; n < CASES; n++) {
    const c = makeCase(random);
    test(`case ${n}`, () => {
      let loaded: ReturnType<typeof loadConfig> | undefined;
      try {
        loaded = loadConfig({ env: c.env, homeDir: HOME, workspace: WORKSPACE, readFile: (path) => c.files[path], parseYaml });
      } catch (error) {
        if (!(error instanceof ConfigError)) {
          throw new Error(`case ${n}: ${String(error)}\n--- ${c.target}\n${c.files[c.target]}`);
        }
        expect(error.exitCode).toBe(125);
        expect(error.message).toContain(c.target);
        outcomes.rejected++;
        return;
      }
      expect(v.is(GlobalConfigSchema, loaded.global)).toBe(true);
      if (loaded.workspaceFile !== undefined) expect(v.is(WorkspaceFileSchema, loaded.workspaceFile)).toBe(true);
      // A config that loads must also produce settings.
      const settings = effectiveSettings(loaded);
      expect(Number.isSafeInteger(settings.timeoutMs.value)).toBe(true);
      expect(Number.isSafeInteger(settings.memoryBytes.value)).toBe(true);
      outcomes.valid++;
    });
  }

  test("the generator produced both outcomes", () => {
    expect(outcomes.valid + outcomes.rejected).toBe(CASES);
    expect(outcomes.valid).toBeGreaterThan(20);
    expect(outcomes.rejected).toBeGreaterThan(100);
  });
});
