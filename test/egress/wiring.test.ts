/**
 * How --egress reaches the plan: flag parsing, the choice between the egress
 * network and the others, the agent's defaults, and the run-time container
 * body. All pure.
 */
import { describe, expect, test } from "bun:test";
import { parseRunArgs } from "../../src/cli/run-options.ts";
import { egressSettings } from "../../src/config/run-settings.ts";
import { DEFAULTS } from "../../src/config/settings.ts";
import { detectAgent } from "../../src/core/agents.ts";
import { UsageError, ConfigError } from "../../src/core/errors.ts";
import { buildRunPlan, type HostFacts, type RunSettings } from "../../src/core/plan.ts";
import { testSettings } from "../helpers/run-settings.ts";
import { egressEngineProblem } from "../../src/egress/gateway.ts";
import { NO_PROXY_VALUE, withEgressRuntime } from "../../src/core/container-body.ts";

type Eff = Parameters<typeof egressSettings>[0];
const eff = (network: string, networkSource: string, egress: string[], egressSource = "/home/me/.config/sandbox/config.yml", audit?: string): Eff => ({
  network: { value: network, source: networkSource },
  egress: { value: egress, source: egress.length ? egressSource : "default" },
  audit: { value: audit, source: audit === undefined ? "default" : "flag --audit" },
});
const generic = { egress: undefined, kind: "generic" } as const;

describe("--egress and --audit flags", () => {
  test("--network public takes --egress rules (they come first)", () => {
    const args = parseRunArgs(["--network", "public", "--egress", "!*.corp.test", "sh"]);
    expect(args.network).toBe("public");
    expect(args.egress).toEqual(["!*.corp.test"]);
  });

  test("comma lists, repeatable", () => {
    expect(parseRunArgs(["--egress", "a.test, *.b.test:443", "--egress", "10.0.0.0/8", "sh"]).egress).toEqual(["a.test", "*.b.test:443", "10.0.0.0/8"]);
    expect(parseRunArgs(["sh"]).egress).toBeUndefined();
    expect(parseRunArgs(["--egress=a.test", "--audit", "out.jsonl", "sh"]).audit).toBe("out.jsonl");
  });

  test.each([
    [["--egress", "", "sh"], "needs hosts"],
    [["--egress", "*,a.test", "sh"], 'comes after "*"'],
    [["--egress", "!*.corp.test,jira.corp.test", "sh"], "can never apply"],
    [["--egress", "*.com", "sh"], "too broad"],
    [["--egress", "a.test:99999", "sh"], "port"],
    [["--egress", "a.test", "--network", "none", "sh"], "cannot be combined"],
    [["--egress", "a.test", "--network", "bridge", "sh"], "cannot be combined"],
  ])("%p is a usage error", (argv, why) => {
    expect(() => parseRunArgs(argv)).toThrow(UsageError);
    expect(() => parseRunArgs(argv)).toThrow(why);
  });
});

describe("egressSettings: when the proxy is in effect", () => {
  test("--egress turns it on, with the agent's own API host added", () => {
    const r = egressSettings(eff("bridge", "default", ["github.com"], "flag --egress"), detectAgent(["claude"]), {});
    expect(r.settings).toEqual({ mode: "allow-list", allow: ["github.com", "api.anthropic.com:443"], agentDefaults: ["api.anthropic.com:443"], audit: undefined, hostsFile: undefined });
  });

  test("the config list applies when no network flag is given", () => {
    const r = egressSettings(eff("bridge", "default", ["pypi.org"]), detectAgent(["codex"]), { SANDBOX_EGRESS_HOSTS: "/tmp/hosts" });
    expect(r.settings?.allow).toEqual(["pypi.org", "api.openai.com:443"]);
    expect(r.settings?.hostsFile).toBe("/tmp/hosts");
  });

  test("an explicit --network wins over the config list; network none from config wins as the stricter choice", () => {
    expect(egressSettings(eff("bridge", "flag --network", ["pypi.org"]), generic, {}).settings).toBeUndefined();
    expect(egressSettings(eff("none", "/w/.sandbox.yml", ["pypi.org"]), generic, {}).settings).toBeUndefined();
  });

  test("no list, no proxy for other commands; an agent's own API host alone opens nothing beyond public mode", () => {
    expect(egressSettings(eff("bridge", "default", []), generic, {}).settings).toBeUndefined();
    expect(egressSettings(eff("bridge", "default", []), detectAgent(["python3"]), {}).settings).toBeUndefined();
    // An agent gets public mode by default (test/config/public-mode.test.ts), not an allow-list of its API host.
    expect(egressSettings(eff("bridge", "default", []), detectAgent(["gemini"]), {}).settings?.mode).toBe("public");
  });

  test("a custom network from the config gives way to the list, with a note", () => {
    const r = egressSettings(eff("corp-net", "/home/me/.config/sandbox/config.yml", ["pypi.org"]), generic, {});
    expect(r.settings?.allow).toEqual(["pypi.org"]);
    expect(r.note).toContain('takes precedence over container.network "corp-net"');
  });

  test("--audit without a list is a usage error; a bad config entry is a config error naming the file", () => {
    expect(() => egressSettings(eff("bridge", "default", [], undefined, "/tmp/a"), generic, {})).toThrow(UsageError);
    expect(() => egressSettings(eff("bridge", "default", ["*.com"], "/etc/cfg.yml"), generic, {})).toThrow(ConfigError);
    expect(() => egressSettings(eff("bridge", "default", ["*", "!a.test"], "/etc/cfg.yml"), generic, {})).toThrow("/etc/cfg.yml");
  });

  test("the default config has no list", () => {
    expect(DEFAULTS.egress).toEqual([]);
  });
});

describe("the plan and the container body", () => {
  const settings = (over: Partial<RunSettings> = {}): RunSettings =>
    testSettings({ timeoutMs: 60_000, memoryBytes: 1 << 30, seccomp: { kind: "unconfined" }, ...over });
  const host: HostFacts = {
    workspace: "/home/me/p",
    uid: 1000,
    gid: 1000,
    env: { HTTP_PROXY: "http://corp:8080" },
    stdinIsTTY: false,
    stdoutIsTTY: false,
    version: "0.1.0",
    now: new Date("2026-01-01T00:00:00Z"),
    randomId: "0123abcd",
  };

  test("an egress run joins its own network, labelled as ours", () => {
    const plan = buildRunPlan(["sh"], settings({ egress: { allow: ["a.test"], agentDefaults: [], audit: "/tmp/a.jsonl", hostsFile: undefined } }), host);
    expect(plan.egress?.network).toBe("sandbox-sh-0123abcd-egress");
    expect(plan.create.HostConfig.NetworkMode).toBe(plan.egress?.network as string);
    expect(plan.egress?.bridge).toBe("sbx-0123abcd");
    expect(plan.egress?.bridge.length).toBeLessThanOrEqual(15);
    expect(plan.egress?.labels["io.sandbox.managed"]).toBe("true");
    expect(plan.create.Labels["io.sandbox.network"]).toBe("egress");
    expect(plan.egress?.audit).toBe("/tmp/a.jsonl");
  });

  test("without egress nothing changes", () => {
    const plan = buildRunPlan(["sh"], settings({ network: "none" }), host);
    expect(plan.egress).toBeUndefined();
    expect(plan.create.HostConfig.NetworkMode).toBe("none");
  });

  test("at run time: proxy variables in both cases (ours win), loopback exempt, DNS at the gateway", () => {
    const plan = buildRunPlan(
      ["sh"],
      settings({ egress: { allow: ["a.test"], agentDefaults: [], audit: undefined, hostsFile: undefined }, envFlags: [{ name: "http_proxy", value: "http://mine:1", fromHost: false }] }),
      host,
    );
    const body = withEgressRuntime(plan.create, { host: "172.18.0.1", port: 3128 });
    const env = Object.fromEntries(body.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]) expect(env[name]).toBe("http://172.18.0.1:3128");
    expect(env.NO_PROXY).toBe(NO_PROXY_VALUE);
    expect(env.no_proxy).toBe(NO_PROXY_VALUE);
    expect(body.Env.filter((e) => e.startsWith("http_proxy=")).length).toBe(1);
    expect(body.HostConfig.Dns).toEqual(["172.18.0.1"]);
    // The plan itself is not changed.
    expect(plan.create.HostConfig.Dns).toBeUndefined();
  });
});

describe("engines that cannot be filtered", () => {
  const unix = { kind: "unix", socketPath: "/var/run/docker.sock", url: "unix:///var/run/docker.sock" } as const;
  test("a local Linux engine is fine", () => {
    expect(egressEngineProblem(unix, "linux", "linux")).toBeUndefined();
  });
  test("Podman and rootless engines are refused: the proxy cannot reach their networks", () => {
    expect(egressEngineProblem(unix, "linux", "linux", { flavor: "podman" })).toContain("Podman");
    expect(egressEngineProblem(unix, "linux", "linux", { flavor: "docker", rootless: true })).toContain("rootless");
    expect(egressEngineProblem(unix, "linux", "linux", { flavor: "docker", rootless: false })).toBeUndefined();
  });
  test("remote, non-Linux hosts and Windows containers are refused", () => {
    expect(egressEngineProblem({ kind: "tcp", host: "10.0.0.5", port: 2376, tls: true, url: "tcp://10.0.0.5:2376" }, "linux", "linux")).toContain("not on this machine");
    expect(egressEngineProblem({ kind: "ssh", host: "h", port: 22, username: "u", url: "ssh://u@h" }, "linux", "linux")).toContain("not on this machine");
    expect(egressEngineProblem(unix, "darwin", "linux")).toContain("darwin");
    expect(egressEngineProblem(unix, "linux", "windows")).toContain("windows");
  });
});
