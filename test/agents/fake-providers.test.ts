/**
 * Development aid: run the real agent CLIs on this host against the fake
 * provider APIs (test/fixtures/agent-apis/server.ts) with the recipes of
 * test/fixtures/agent-apis/agents.ts, and check the answer and the recorded
 * requests. Nothing leaves loopback: the fake listens on 127.0.0.1, and the
 * agents get HTTPS_PROXY/HTTP_PROXY pointing at the fake (NO_PROXY for
 * itself), which refuses and records any CONNECT, so a host an agent still
 * tried shows up as a "proxy" request and fails the test.
 *
 * The CLIs are not installed by the test (too slow for every run). Install
 * them once into a directory and name it in SANDBOX_AGENT_CLIS:
 *
 *   export SANDBOX_AGENT_CLIS=$HOME/.cache/sandbox-agent-clis
 *   bash test/agents/install-clis.sh          # or the npm line of agents.ts INSTALL_COMMAND
 *   bun test test/agents
 *
 * (Node >= 20 must be on PATH for Codex's and Gemini CLI's launchers.)
 * Without SANDBOX_AGENT_CLIS, or without a CLI there, its tests are skipped.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  AGENTS,
  type AgentName,
  claudeHookSettings,
  codexConfigToml,
  INSTALL_COMMAND,
  type Recipe,
} from "../fixtures/agent-apis/agents.ts";
import { type FakeProviders, type RecordedRequest, startFakeProviders } from "../fixtures/agent-apis/server.ts";

const CLIS = process.env.SANDBOX_AGENT_CLIS;
const RUN_TIMEOUT_MS = 90_000;
const TEST_TIMEOUT_MS = 120_000;

function binOf(name: AgentName): string | null {
  if (!CLIS) return null;
  const p = join(CLIS, "node_modules", ".bin", AGENTS[name].bin);
  return existsSync(p) ? p : null;
}

function nodeMajor(): number {
  const r = spawnSync("node", ["--version"], { encoding: "utf8", timeout: 10_000 });
  const m = /^v(\d+)/.exec(r.stdout ?? "");
  return m ? Number(m[1]) : 0;
}

const NODE_DIR = (() => {
  const r = spawnSync("sh", ["-c", "command -v node"], { encoding: "utf8", timeout: 10_000 });
  return r.stdout?.trim() ? dirname(r.stdout.trim()) : "/usr/bin";
})();

function skipReason(name: AgentName): string | null {
  if (!CLIS) return `SANDBOX_AGENT_CLIS is not set (install the CLIs with: ${INSTALL_COMMAND})`;
  if (!binOf(name)) return `${AGENTS[name].bin} is not installed under ${CLIS} (${INSTALL_COMMAND})`;
  if (AGENTS[name].node && name === "gemini" && nodeMajor() < 20) return "Gemini CLI needs Node >= 20 on PATH";
  return null;
}

/**
 * `describe(title, body)` when the agent's CLI is installed; otherwise one
 * skipped test whose name says why.
 */
function agentSuite(name: AgentName, title: string, body: () => void): void {
  const why = skipReason(name);
  if (why) test.skip(`${title} (skipped: ${why})`, () => {});
  else describe(title, body);
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  home: string;
  workdir: string;
}

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(d);
  return d;
}

/**
 * Run `recipe` with only HOME, PATH, the proxy trap and the recipe's env;
 * stdin /dev/null; killed after RUN_TIMEOUT_MS.
 */
async function runAgent(
  name: AgentName,
  recipe: Recipe,
  fake: FakeProviders,
  opts: { home?: string; workdir?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const home = opts.home ?? tempDir(`agent-${name}-home-`);
  const workdir = opts.workdir ?? tempDir(`agent-${name}-work-`);
  for (const f of recipe.files) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, f.content);
  }
  const bin = binOf(name);
  if (!bin) throw new Error(`${name} is not installed`);
  const env: Record<string, string> = {
    HOME: home,
    PATH: [NODE_DIR, "/usr/local/bin", "/usr/bin", "/bin"].join(":"),
    HTTPS_PROXY: fake.url,
    HTTP_PROXY: fake.url,
    https_proxy: fake.url,
    http_proxy: fake.url,
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
    ...recipe.env,
    ...opts.env,
  };
  const [, ...args] = recipe.argv;
  const child = spawn(bin, args, {
    cwd: workdir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  clearTimeout(killer);
  return { code, stdout, stderr, home, workdir };
}

function recipeFor(name: AgentName, fake: FakeProviders, home: string, prompt = "say hi"): Recipe {
  return AGENTS[name].recipe({ baseUrl: fake.url, home, prompt });
}

function of(fake: FakeProviders, provider: RecordedRequest["provider"]): RecordedRequest[] {
  return fake.requests.filter((r) => r.provider === provider);
}

function explain(r: RunResult, fake: FakeProviders): string {
  return [
    `exit ${r.code}`,
    `stdout: ${r.stdout.slice(-2000)}`,
    `stderr: ${r.stderr.slice(-2000)}`,
    `requests: ${fake.requests.map((q) => `${q.provider} ${q.method} ${q.path}`).join(", ")}`,
  ].join("\n");
}

// ---------------------------------------------------------------- Claude Code

agentSuite("claude", "Claude Code against the fake Anthropic API", () => {
  let fake: FakeProviders;
  beforeAll(async () => {
    fake = await startFakeProviders({ host: "127.0.0.1" });
  });
  afterAll(() => fake?.close());

  test(
    "claude -p answers from the fake, with the key in x-api-key, touching no other host",
    async () => {
      const home = tempDir("agent-claude-home-");
      const recipe = recipeFor("claude", fake, home);
      const before = fake.requests.length;
      const r = await runAgent("claude", recipe, fake, { home });
      const reqs = fake.requests.slice(before);
      expect(r.code, explain(r, fake)).toBe(0);
      for (const s of recipe.expectedOutput) expect(r.stdout).toContain(s);
      const messages = reqs.filter((q) => q.provider === "anthropic" && q.path.startsWith("/v1/messages"));
      expect(messages.length).toBeGreaterThanOrEqual(1);
      const first = messages[0]!;
      expect(first.method).toBe("POST");
      expect(first.headers[recipe.authHeader.name]).toBe(recipe.authHeader.value);
      expect(first.headers["anthropic-version"]).toBe("2023-06-01");
      expect((first.body as { stream?: boolean }).stream).toBe(true);
      expect(JSON.stringify((first.body as { messages: unknown }).messages)).toContain("say hi");
      expect(reqs.filter((q) => q.provider === "proxy")).toEqual([]);
      // State: ~/.claude.json and ~/.claude/ (no onboarding state needed first).
      expect(existsSync(join(home, ".claude.json"))).toBe(true);
      expect(existsSync(join(home, ".claude", "projects"))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "hooks in ~/.claude/settings.json run in -p mode",
    async () => {
      const home = tempDir("agent-claude-home-");
      const markers = tempDir("agent-claude-markers-");
      mkdirSync(join(home, ".claude"), { recursive: true });
      writeFileSync(join(home, ".claude", "settings.json"), claudeHookSettings(markers));
      const r = await runAgent("claude", recipeFor("claude", fake, home), fake, { home });
      expect(r.code, explain(r, fake)).toBe(0);
      const ran = readdirSync(markers).sort();
      expect(ran).toEqual(["SessionEnd", "SessionStart", "Stop", "UserPromptSubmit"]);
      expect(readFileSync(join(markers, "SessionStart"), "utf8")).toContain(r.workdir);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "CLAUDE_CONFIG_DIR holds .claude.json and settings; HOME is left untouched",
    async () => {
      const home = tempDir("agent-claude-home-");
      const config = tempDir("agent-claude-config-");
      const markers = tempDir("agent-claude-markers-");
      writeFileSync(join(config, "settings.json"), claudeHookSettings(markers));
      const r = await runAgent("claude", recipeFor("claude", fake, home), fake, {
        home,
        env: { CLAUDE_CONFIG_DIR: config },
      });
      expect(r.code, explain(r, fake)).toBe(0);
      expect(existsSync(join(config, ".claude.json"))).toBe(true);
      expect(readdirSync(home)).toEqual([]);
      expect(readdirSync(markers)).toContain("SessionStart");
    },
    TEST_TIMEOUT_MS,
  );
});

// ---------------------------------------------------------------- Codex

agentSuite("codex", "Codex against the fake OpenAI Responses API", () => {
  let fake: FakeProviders;
  beforeAll(async () => {
    fake = await startFakeProviders({ host: "127.0.0.1" });
  });
  afterAll(() => fake?.close());

  function checkToolRound(r: RunResult, reqs: RecordedRequest[], recipe: Recipe) {
    expect(r.code, explain(r, fake)).toBe(0);
    for (const s of recipe.expectedOutput) expect(r.stdout).toContain(s);
    // The shell tool ran through Codex's own tool path, in the workspace.
    expect(readFileSync(join(r.workdir, "tool-output.txt"), "utf8").trim()).toBe("tool-ran");
    const responses = reqs.filter((q) => q.provider === "openai" && q.method === "POST");
    expect(responses.map((q) => q.path)).toEqual(["/v1/responses", "/v1/responses"]);
    for (const q of responses) expect(q.headers[recipe.authHeader.name]).toBe(recipe.authHeader.value);
    expect((responses[0]!.body as { stream?: boolean }).stream).toBe(true);
    // The second request carries the tool's output.
    const input = (responses[1]!.body as { input: Array<{ type: string }> }).input;
    expect(input.some((i) => /_call_output$/.test(i.type) && JSON.stringify(i).includes("tool-ran"))).toBe(true);
    expect(reqs.filter((q) => q.provider === "proxy")).toEqual([]);
  }

  test(
    "codex exec with -c overrides runs the fake's shell tool call and answers with its output",
    async () => {
      const home = tempDir("agent-codex-home-");
      const recipe = recipeFor("codex", fake, home);
      const before = fake.requests.length;
      const outputsBefore = fake.toolOutputs.length;
      const r = await runAgent("codex", recipe, fake, { home });
      checkToolRound(r, fake.requests.slice(before), recipe);
      expect(fake.toolOutputs.slice(outputsBefore).join("\n")).toContain("tool-ran");
      expect(existsSync(join(home, ".codex"))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "with another model Codex offers exec_command as a plain function tool, and runs that call too",
    async () => {
      const home = tempDir("agent-codex-home-");
      const base = recipeFor("codex", fake, home);
      // codex exec -m gpt-5-codex ... (the default model uses code mode instead)
      const recipe: Recipe = { ...base, argv: [...base.argv.slice(0, 2), "-m", "gpt-5-codex", ...base.argv.slice(2)] };
      const before = fake.requests.length;
      const r = await runAgent("codex", recipe, fake, { home });
      const reqs = fake.requests.slice(before);
      checkToolRound(r, reqs, recipe);
      const first = reqs.find((q) => q.provider === "openai")!.body as { tools: Array<{ name?: string }> };
      expect(first.tools.map((t) => t.name)).toContain("exec_command");
      const second = reqs.filter((q) => q.provider === "openai").at(-1)!.body as { input: Array<{ type: string }> };
      expect(second.input.some((i) => i.type === "function_call_output")).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "codex exec with the same settings in $CODEX_HOME/config.toml",
    async () => {
      const home = tempDir("agent-codex-home-");
      const codexHome = tempDir("agent-codex-state-");
      writeFileSync(join(codexHome, "config.toml"), codexConfigToml(fake.url));
      const base = recipeFor("codex", fake, home);
      const recipe: Recipe = { ...base, argv: ["codex", "exec", "--skip-git-repo-check", "say hi"] };
      const before = fake.requests.length;
      const r = await runAgent("codex", recipe, fake, { home, env: { CODEX_HOME: codexHome } });
      checkToolRound(r, fake.requests.slice(before), recipe);
      expect(existsSync(join(home, ".codex"))).toBe(false);
      expect(readdirSync(codexHome).length).toBeGreaterThan(1);
    },
    TEST_TIMEOUT_MS,
  );
});

// ---------------------------------------------------------------- Gemini CLI

agentSuite("gemini", "Gemini CLI against the fake Gemini API", () => {
  let fake: FakeProviders;
  beforeAll(async () => {
    fake = await startFakeProviders({ host: "127.0.0.1" });
  });
  afterAll(() => fake?.close());

  test(
    "gemini -p answers from the fake, with the key in x-goog-api-key, touching no other host",
    async () => {
      const home = tempDir("agent-gemini-home-");
      const recipe = recipeFor("gemini", fake, home);
      const before = fake.requests.length;
      const r = await runAgent("gemini", recipe, fake, { home });
      const reqs = fake.requests.slice(before);
      expect(r.code, explain(r, fake)).toBe(0);
      for (const s of recipe.expectedOutput) expect(r.stdout).toContain(s);
      const gem = reqs.filter((q) => q.provider === "gemini");
      const stream = gem.find((q) => q.path.includes(":streamGenerateContent?alt=sse"));
      expect(stream, explain(r, fake)).toBeDefined();
      for (const q of gem) expect(q.headers[recipe.authHeader.name]).toBe(recipe.authHeader.value);
      expect(JSON.stringify((stream!.body as { contents: unknown }).contents)).toContain("say hi");
      expect(reqs.filter((q) => q.provider === "proxy")).toEqual([]);
      expect(existsSync(join(home, ".gemini", "projects.json"))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "without an auth type in settings, -p with GOOGLE_GEMINI_BASE_URL is refused",
    async () => {
      const home = tempDir("agent-gemini-home-");
      const recipe = { ...recipeFor("gemini", fake, home), files: [] };
      const before = fake.requests.length;
      const r = await runAgent("gemini", recipe, fake, { home });
      expect(r.code).toBe(41);
      expect(r.stderr).toContain("Invalid auth method selected");
      expect(fake.requests.slice(before).filter((q) => q.provider === "gemini")).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});
