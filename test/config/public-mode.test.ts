/**
 * Public mode (issue #15, docs/egress.md "Public mode"): which runs get it,
 * from the settings layers as they are merged for a real run (the user's
 * config, a trusted .sandbox.yml, then flags), and what list its proxy gets.
 * All pure.
 */
import { describe, expect, test } from "bun:test";
import { parseRunArgs } from "../../src/cli/run-options.ts";
import { mergeSettings, withFlags, type GlobalLayer, type WorkspaceLayer } from "../../src/config/resolve.ts";
import { settingRows } from "../../src/config/report.ts";
import { egressSettings } from "../../src/config/run-settings.ts";
import { SETTINGS, type EffectiveSettings } from "../../src/config/settings.ts";
import { detectAgent } from "../../src/core/agents.ts";
import { ConfigError, UsageError } from "../../src/core/errors.ts";

const USER = "/home/me/.config/sandbox/config.yaml";
const REPO = "/home/me/project/.sandbox.yml";

/** The settings a run would see: user config (with its sources), then the workspace file, then the flags of `argv`. */
function settings(config: Record<string, unknown> = {}, workspace?: Record<string, unknown>, argv: string[] = []): EffectiveSettings {
  const sources: Record<string, string> = {};
  const note = (prefix: string, value: unknown) => {
    if (value && typeof value === "object" && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) note(prefix ? `${prefix}.${k}` : k, v);
    else sources[prefix] = USER;
  };
  note("", config);
  const global: GlobalLayer = { config: config as GlobalLayer["config"], sources };
  const layer: WorkspaceLayer | undefined = workspace ? { file: workspace as WorkspaceLayer["file"], path: REPO } : undefined;
  const { command: _command, ...flags } = parseRunArgs([...argv, "sh"]);
  return withFlags(SETTINGS, mergeSettings(global, layer), flags) as EffectiveSettings;
}

const claude = detectAgent(["claude"]);
const mode = (eff: EffectiveSettings, agent = claude) => egressSettings(eff, agent, {}).settings;

describe("who gets public mode", () => {
  test("an agent run whose network nobody chose: public, marked as the default, its API host before the closing *", () => {
    const s = mode(settings());
    expect(s).toEqual({ mode: "public", byDefault: true, allow: ["api.anthropic.com:443", "*"], agentDefaults: ["api.anthropic.com:443"], audit: undefined, hostsFile: undefined });
    // Every agent profile, with or without API hosts of its own.
    for (const agent of ["codex", "gemini", "opencode", "aider", "kilocode", "amp", "goose"]) {
      expect(mode(settings(), detectAgent([agent]))?.mode).toBe("public");
      expect(mode(settings(), detectAgent([agent]))?.allow.at(-1)).toBe("*");
    }
    expect(mode(settings(), detectAgent(["opencode"]))?.allow).toEqual(["*"]);
  });

  test("other commands keep bridge: runtimes and the generic profile", () => {
    for (const command of ["python3", "node", "sh", "go"]) expect(mode(settings(), detectAgent([command]))).toBeUndefined();
  });

  test("explicit choices win over the agents' default: --network bridge, none or a name; container.network in the user's config", () => {
    for (const net of ["bridge", "none", "corp-net", "host"]) expect(mode(settings({}, undefined, ["--network", net]))).toBeUndefined();
    expect(mode(settings({ container: { network: "bridge" } }))).toBeUndefined();
    expect(mode(settings({ container: { network: "none" } }))).toBeUndefined();
  });

  test("--egress alone is an allow-list, as before, also for agents and over container.network: public", () => {
    expect(mode(settings({}, undefined, ["--egress", "github.com"]))).toMatchObject({ mode: "allow-list", allow: ["github.com", "api.anthropic.com:443"] });
    expect(mode(settings({ container: { network: "public" } }, undefined, ["--egress", "github.com"]))?.mode).toBe("allow-list");
    // network.egress in the user's config is an allow-list for every run, agents included.
    expect(mode(settings({ network: { egress: ["pypi.org"] } }))).toMatchObject({ mode: "allow-list", allow: ["pypi.org", "api.anthropic.com:443"] });
  });

  test("--network public: for any command, chosen (not a default); --egress rules come first, then *", () => {
    expect(mode(settings({}, undefined, ["--network", "public"]), detectAgent(["sh"]))).toMatchObject({ mode: "public", allow: ["*"] });
    expect(mode(settings({}, undefined, ["--network", "public"]))?.byDefault).toBeUndefined();
    const ruled = mode(settings({}, undefined, ["--network", "public", "--egress", "jira.corp.example,!*.corp.example"]));
    expect(ruled?.allow).toEqual(["jira.corp.example", "!*.corp.example", "api.anthropic.com:443", "*"]);
    // A list that already ends in * keeps one.
    expect(mode(settings({}, undefined, ["--network", "public", "--egress", "a.test,*"]), detectAgent(["sh"]))?.allow).toEqual(["a.test", "*"]);
  });

  test("container.network: public in the user's config: public for every command, with network.egress rules first", () => {
    const s = settings({ container: { network: "public" }, network: { egress: ["!*.corp.example"] } });
    expect(mode(s, detectAgent(["python3"]))).toMatchObject({ mode: "public", allow: ["!*.corp.example", "*"] });
    expect(mode(s)?.byDefault).toBeUndefined();
    // --network public on the command line takes the config's rules too.
    expect(mode(settings({ network: { egress: ["!*.corp.example"] } }, undefined, ["--network", "public"]), detectAgent(["sh"]))?.allow).toEqual(["!*.corp.example", "*"]);
  });

  test("a rule that refuses every host contradicts public mode: a usage error for a flag, a config error naming the file", () => {
    expect(() => mode(settings({}, undefined, ["--network", "public", "--egress", "!*"]))).toThrow(UsageError);
    expect(() => mode(settings({}, undefined, ["--network", "public", "--egress", "!*"]))).toThrow('adds "*" last');
    expect(() => mode(settings({ container: { network: "public" }, network: { egress: ["!*"] } }))).toThrow(ConfigError);
    expect(() => mode(settings({ container: { network: "public" }, network: { egress: ["!*"] } }))).toThrow(USER);
  });

  test("--audit records public mode too (by default or chosen); without any proxy it is a usage error", () => {
    expect(mode(settings({}, undefined, ["--audit", "/tmp/a.jsonl"]))?.audit).toBe("/tmp/a.jsonl");
    expect(mode(settings({}, undefined, ["--network", "public", "--audit", "/tmp/a.jsonl"]), detectAgent(["sh"]))?.audit).toBe("/tmp/a.jsonl");
    expect(() => mode(settings({}, undefined, ["--network", "bridge", "--audit", "/tmp/a.jsonl"]))).toThrow(UsageError);
    expect(() => mode(settings({}, undefined, ["--audit", "/tmp/a.jsonl"]), detectAgent(["sh"]))).toThrow("does not go through it");
  });
});

describe("a trusted .sandbox.yml", () => {
  test("can pick public: for any command, not marked as a default", () => {
    const s = settings({}, { network: "public" });
    expect(s.network).toEqual({ value: "public", source: REPO });
    expect(mode(s, detectAgent(["python3"]))).toMatchObject({ mode: "public", allow: ["*"] });
    expect(mode(s)?.byDefault).toBeUndefined();
  });

  test("can pick none or bridge as before (bridge takes an agent off the proxy: the run warns about its key, cli/public-mode.ts)", () => {
    expect(mode(settings({}, { network: "none" }))).toBeUndefined();
    expect(settings({}, { network: "bridge" }).network).toEqual({ value: "bridge", source: REPO });
    expect(mode(settings({}, { network: "bridge" }))).toBeUndefined();
  });

  test("cannot loosen the user's choice: bridge over public, public over none or an allow-list; a flag still can", () => {
    const overPublic = settings({ container: { network: "public" } }, { network: "bridge" });
    expect(overPublic.network.value).toBe("public");
    expect(overPublic.network.note).toBe(`ignored network "bridge" from ${REPO}: it would loosen container.network: public (${USER}); pass --network bridge to allow it`);
    const overNone = settings({ container: { network: "none" } }, { network: "public" });
    expect(overNone.network.value).toBe("none");
    expect(overNone.network.note).toContain("--network public");
    const overList = settings({ network: { egress: ["pypi.org"] } }, { network: "public" });
    expect(overList.network.value).toBe("bridge");
    expect(overList.network.note).toContain("network.egress");
    expect(mode(overList)?.mode).toBe("allow-list");
    expect(settings({ container: { network: "public" } }, { network: "bridge" }, ["--network", "bridge"]).network).toEqual({ value: "bridge", source: "flag --network" });
  });

  test("can tighten public to none", () => {
    expect(settings({ container: { network: "public" } }, { network: "none" }).network).toEqual({ value: "none", source: REPO });
  });

  test("other networks are still ignored with a note naming the three it may choose", () => {
    expect(settings({}, { network: "host" }).network.note).toContain("a repository may choose only none, bridge or public");
  });
});

describe("config show", () => {
  test("the network's default says what agents get; a value that was set is shown as it is", () => {
    const row = (s: EffectiveSettings) => settingRows(SETTINGS, s).find((r) => r.key === "container.network");
    expect(row(settings())).toEqual({ key: "container.network", value: "bridge; public for agent runs (claude, codex, gemini, ...)", source: "default" });
    expect(row(settings({ container: { network: "bridge" } }))).toEqual({ key: "container.network", value: "bridge", source: USER });
    expect(row(settings({}, { network: "public" }))).toEqual({ key: "container.network", value: "public", source: REPO });
  });
});
