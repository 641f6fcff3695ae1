/**
 * `sandbox run claude|codex|gemini` end to end: the real agent CLIs, in the
 * images sandbox builds from its recipes (on sandbox-test/node:22, with the
 * host's CA bundle for the intercepting proxy), answer from fake provider
 * APIs that run on the host (test/fixtures/agent-apis), reached through the
 * engine's bridge gateway (so these runs pass --network bridge: the agents'
 * default, public mode, keeps the host out of reach; agent-images.test.ts
 * runs Claude Code in public mode). Nothing goes to a real provider.
 *
 * Checks what each profile does for its agent: Claude Code's state persists
 * per workspace (a hook planted in workspace A's state runs there and never
 * in workspace B), Codex runs a shell tool call through its own tool path
 * (told that the container is its sandbox), Gemini CLI's API-key auth is
 * selected for it.
 *
 * The images take minutes to build, so like agent-images.test.ts this runs
 * once per CI run, in the compiled-binary pass (SANDBOX_TEST_AGENT_BUILDS=1
 * runs it in any pass).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codexConfigArgs, DEFAULT_KEYS } from "../fixtures/agent-apis/agents.ts";
import { DEFAULT_TEXT, startFakeProviders, type FakeProviders } from "../fixtures/agent-apis/server.ts";
import { inspectImage } from "../../src/engine/images.ts";
import { testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox, SANDBOX_BIN } from "../helpers/sandbox.ts";

const BASE = "sandbox-test/node:22";
const HOST_CA = "/etc/ssl/certs/ca-certificates.crt";
const AGENT_MS = 240_000;

const engine = await testEngine();
const wanted = process.env.SANDBOX_TEST_AGENT_BUILDS;
const RUNS = wanted === "1" || (wanted !== "0" && SANDBOX_BIN !== undefined);
const READY = RUNS && (await inspectImage(engine, BASE)) !== undefined && existsSync(HOST_CA);

const root = mkdtempSync(join(tmpdir(), "sandbox-agents-"));
const state = join(root, "state");
const configFile = join(root, "config.yaml");
writeFileSync(configFile, `build:\n  base: ${BASE}\nsecurity:\n  ca_certs: [${HOST_CA}]\n`);
const env = { SANDBOX_CONFIG: configFile, XDG_STATE_HOME: state };

let fake: FakeProviders;
let url = "";

/** The engine's default network's gateway: this machine, as containers on that network see it. */
async function gateway(): Promise<string> {
  const name = IS_PODMAN ? "podman" : "bridge";
  const reply = await engine.json<{ IPAM?: { Config?: Array<{ Gateway?: string; Subnet?: string }> } }>({ method: "GET", path: `/networks/${name}` });
  const v4 = reply.body.IPAM?.Config?.find((c) => c.Subnet && !c.Subnet.includes(":"));
  // Docker 20.10 lists only the default bridge's subnet: its gateway is the subnet's first address.
  const address = v4?.Gateway ?? v4?.Subnet?.replace(/\.0\/\d+$/, ".1");
  if (!address) throw new Error(`network ${name} has no IPv4 gateway`);
  return address;
}

function workspace(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

beforeAll(async () => {
  if (!READY) return;
  const host = await gateway();
  fake = await startFakeProviders({ host });
  url = `http://${host}:${fake.port}`;
  // The images, as a user would build them (a no-op when agent-images.test.ts built them already).
  const built = await runSandbox(["image", "build", "claude", "codex", "gemini", "--base", BASE, "--ca-cert", HOST_CA], { cwd: root, env, timeoutMs: 15 * 60_000 });
  if (built.code !== 0) throw new Error(`sandbox image build failed (${built.code}):\n${built.stderr}`);
}, 16 * 60_000);

afterAll(async () => {
  await fake?.close();
  rmSync(root, { recursive: true, force: true });
});

// The fake APIs listen on the host, which public mode (the agents' default network) keeps out of reach: these runs choose bridge.
const claude = (cwd: string, args: string[]) =>
  runSandbox(["run", "--network", "bridge", "--env", `ANTHROPIC_API_KEY=${DEFAULT_KEYS.claude}`, "--env", `ANTHROPIC_BASE_URL=${url}`, "--env", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "claude", ...args], {
    cwd,
    env,
    timeoutMs: AGENT_MS,
  });

describe.skipIf(!READY)("real agents against fake provider APIs", () => {
  test(
    "claude -p answers from the fake Messages API (streaming), the key in x-api-key",
    async () => {
      const r = await claude(workspace("claude-a"), ["-p", "say hi"]);
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toContain(DEFAULT_TEXT.anthropic);
      const asked = fake.requests.filter((q) => q.provider === "anthropic" && q.path.startsWith("/v1/messages"));
      expect(asked.length).toBeGreaterThan(0);
      expect(asked.at(-1)?.headers["x-api-key"]).toBe(DEFAULT_KEYS.claude);
      expect((asked.at(-1)?.body as { stream?: boolean }).stream).toBe(true);
    },
    AGENT_MS,
  );

  test(
    "Claude Code's state persists for its workspace only: a hook planted in A's state runs in A, never in B",
    async () => {
      const a = workspace("claude-a");
      const b = workspace("claude-b");
      // The first run in A wrote its state (CLAUDE_CONFIG_DIR is the per-workspace folder).
      const seen = await runSandbox(["run", "--agent", "claude", "sh", "-c", 'ls -A "$CLAUDE_CONFIG_DIR"'], { cwd: a, env });
      expect(seen.stdout.toString()).toContain(".claude.json");
      // A prompt-injected agent in A plants a hook in its own state.
      const hook = { hooks: { UserPromptSubmit: [{ hooks: [{ type: "command", command: 'echo "hook ran in $PWD" >> /work/hook-marker' }] }] } };
      const plant = await runSandbox(["run", "--agent", "claude", "sh", "-c", `printf '%s' '${JSON.stringify(hook)}' > "$CLAUDE_CONFIG_DIR/settings.json"`], { cwd: a, env });
      expect(plant.code).toBe(0);

      const inB = await claude(b, ["-p", "say hi"]);
      expect(inB.code).toBe(0);
      expect(inB.stdout.toString()).toContain(DEFAULT_TEXT.anthropic);
      expect(existsSync(join(b, "hook-marker"))).toBe(false);

      // The control: the same hook does run in A, so its absence in B is the isolation, not a dud hook.
      const inA = await claude(a, ["-p", "say hi"]);
      expect(inA.code).toBe(0);
      expect(readFileSync(join(a, "hook-marker"), "utf8")).toBe("hook ran in /work\n");
      // Two state folders, one per workspace.
      expect(readdirSync(join(state, "sandbox", "agents", "claude")).filter((d) => !d.endsWith(".workspace")).sort()).toEqual(
        expect.arrayContaining([expect.stringMatching(/^claude-a-/), expect.stringMatching(/^claude-b-/)]),
      );
    },
    2 * AGENT_MS,
  );

  test(
    "codex exec answers from the fake Responses API and runs a shell tool call through its own tool path",
    async () => {
      const ws = workspace("codex");
      const r = await runSandbox(
        ["run", "--network", "bridge", "--env", `OPENAI_API_KEY=${DEFAULT_KEYS.codex}`, "codex", "exec", "--skip-git-repo-check", ...codexConfigArgs(url), "write tool-output.txt"],
        { cwd: ws, env, timeoutMs: AGENT_MS },
      );
      expect(r.code).toBe(0);
      const out = r.stdout.toString();
      expect(out).toContain(DEFAULT_TEXT.openai);
      expect(out).toContain("tool-ran");
      // The tool ran in the container's /work: its file is in the workspace on the host.
      expect(readFileSync(join(ws, "tool-output.txt"), "utf8")).toBe("tool-ran\n");
      const asked = fake.requests.filter((q) => q.provider === "openai" && q.path.startsWith("/v1/responses"));
      expect(asked.length).toBe(2);
      expect(asked[0]?.headers.authorization).toBe(`Bearer ${DEFAULT_KEYS.codex}`);
      expect(fake.toolOutputs.some((o) => o.includes("tool-ran"))).toBe(true);
    },
    AGENT_MS,
  );

  test(
    "gemini -p answers from the fake generateContent API, with API-key auth selected by the profile",
    async () => {
      const ws = workspace("gemini");
      const r = await runSandbox(["run", "--network", "bridge", "--env", `GEMINI_API_KEY=${DEFAULT_KEYS.gemini}`, "--env", `GOOGLE_GEMINI_BASE_URL=${url}`, "gemini", "-p", "say hi"], {
        cwd: ws,
        env,
        timeoutMs: AGENT_MS,
      });
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toContain(DEFAULT_TEXT.gemini);
      const asked = fake.requests.filter((q) => q.provider === "gemini");
      expect(asked.some((q) => q.path.includes(":streamGenerateContent"))).toBe(true);
      expect(asked.at(-1)?.headers["x-goog-api-key"]).toBe(DEFAULT_KEYS.gemini);
    },
    AGENT_MS,
  );

  test(
    "no request left for another host: every agent stayed on the fake",
    () => {
      expect(fake.requests.filter((q) => q.provider === "proxy" || q.provider === "other").map((q) => `${q.method} ${q.path}`)).toEqual([]);
    },
  );
});
