import { describe, expect, test } from "bun:test";
import { buildRunPlan, containerName, redactPlan, type HostFacts, type RunSettings } from "../../src/core/plan.ts";
import { testSettings } from "../helpers/run-settings.ts";

const settings = (over: Partial<RunSettings> = {}): RunSettings => testSettings({ ...over });

const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  workspace: "/home/me/project",
  uid: 1234,
  gid: 5678,
  env: { LANG: "C.UTF-8", GITHUB_TOKEN: "ghp_secret", AWS_SECRET_ACCESS_KEY: "aws", OPENAI_API_KEY: "sk", HOME: "/home/me", PATH: "/usr/bin" },
  stdinIsTTY: false,
  stdoutIsTTY: false,
  version: "0.1.0",
  now: new Date("2026-01-01T00:00:00Z"),
  randomId: "deadbeef",
  ...over,
});


describe("buildRunPlan", () => {
  test("hardened defaults", () => {
    const plan = buildRunPlan(["echo", "hi"], settings(), host());
    const hc = plan.create.HostConfig;
    expect(hc.CapDrop).toEqual(["ALL"]);
    expect(hc.CapAdd).toEqual([]);
    expect(hc.SecurityOpt).toContain("no-new-privileges:true");
    expect(hc.SecurityOpt.some((o) => o.startsWith("seccomp={"))).toBe(true);
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.Init).toBe(true);
    expect(hc.Privileged).toBe(false);
    expect(hc.Memory).toBe(hc.MemorySwap);
    expect(hc.PidsLimit).toBe(512);
    expect(hc.Ulimits[0]?.Name).toBe("nofile");
    expect(hc.Mounts[0]).toEqual({ Type: "bind", Source: "/home/me/project", Target: "/work", ReadOnly: false });
    expect(Object.keys(hc.Tmpfs).sort()).toEqual(["/home/sandbox", "/run", "/tmp", "/var/tmp"]);
    expect(hc.Tmpfs["/home/sandbox"]).toContain("uid=1234,gid=5678");
    expect(hc.Tmpfs["/run"]).toContain("noexec");
    expect(plan.create.User).toBe("1234:5678");
    expect(plan.create.WorkingDir).toBe("/work");
    expect(JSON.stringify(plan.create)).not.toContain("docker.sock");
  });

  test("env: only the allow-list passes, the block-list wins, values never in labels", () => {
    const plan = buildRunPlan(["env"], settings({ envAllow: ["GITHUB_*"] }), host());
    const env = plan.create.Env;
    expect(env).toContain("LANG=C.UTF-8");
    expect(env).toContain("HOME=/home/sandbox");
    expect(env.some((e) => e.startsWith("GITHUB_TOKEN="))).toBe(false);
    expect(env.some((e) => e.startsWith("AWS_SECRET_ACCESS_KEY="))).toBe(false);
    expect(env.some((e) => e.startsWith("PATH="))).toBe(false);
    expect(plan.blockedEnvNames).toContain("GITHUB_TOKEN");
    expect(JSON.stringify(plan.create.Labels)).not.toContain("ghp_secret");
  });

  test("--env NAME forwards a blocked variable on purpose, warns, and dry-run masks it", () => {
    const plan = buildRunPlan(["env"], settings({ envFlags: [{ name: "GITHUB_TOKEN", fromHost: true }, { name: "FOO", value: "bar", fromHost: false }] }), host());
    expect(plan.create.Env).toContain("GITHUB_TOKEN=ghp_secret");
    expect(plan.create.Env).toContain("FOO=bar");
    expect(plan.warnings.join("\n")).toContain("GITHUB_TOKEN");
    expect(plan.forwardedEnvNames).toEqual(["FOO", "GITHUB_TOKEN", "LANG"]);
    const shown = redactPlan(plan);
    expect(shown.create.Env).toContain("GITHUB_TOKEN=***");
    expect(JSON.stringify(shown)).not.toContain("ghp_secret");
    expect(plan.create.Labels["io.sandbox.env"]).toBe("FOO,GITHUB_TOKEN,LANG");
  });

  test("TTY and stdin follow the terminals unless flags say otherwise", () => {
    expect(buildRunPlan(["sh"], settings(), host({ stdinIsTTY: true, stdoutIsTTY: true })).tty).toBe(true);
    const piped = buildRunPlan(["cat"], settings(), host({ stdinIsTTY: false, stdoutIsTTY: true }));
    expect(piped.tty).toBe(false);
    expect(piped.stdin).toBe(true);
    const hook = buildRunPlan(["true"], settings(), host({ stdinIsTTY: true, stdoutIsTTY: false }));
    expect(hook.stdin).toBe(false);
    expect(buildRunPlan(["sh"], settings({ tty: false }), host({ stdinIsTTY: true, stdoutIsTTY: true })).tty).toBe(false);
    expect(buildRunPlan(["sh"], settings({ interactive: false }), host()).stdin).toBe(false);
  });

  test("dangerous capabilities and unconfined seccomp warn", () => {
    const plan = buildRunPlan(["x"], settings({ capAdd: ["SYS_ADMIN", "NET_BIND_SERVICE"], seccomp: { kind: "unconfined" } }), host());
    expect(plan.create.HostConfig.CapAdd).toEqual(["SYS_ADMIN", "NET_BIND_SERVICE"]);
    expect(plan.create.HostConfig.SecurityOpt).toContain("seccomp=unconfined");
    expect(plan.warnings.some((w) => w.includes("SYS_ADMIN"))).toBe(true);
    expect(plan.warnings.some((w) => w.includes("NET_BIND_SERVICE"))).toBe(false);
    expect(plan.warnings.some((w) => w.includes("unconfined"))).toBe(true);
  });

  test("--network host warns that the command shares the host's network; bridge and none do not", () => {
    const hostNet = buildRunPlan(["x"], settings({ network: "host" }), host());
    expect(hostNet.create.HostConfig.NetworkMode).toBe("host");
    expect(hostNet.warnings.filter((w) => w.includes("--network host"))).toEqual([
      "--network host: the command shares the host's network, so it can reach services on the host's localhost and every network the host is on.",
    ]);
    for (const network of ["bridge", "none"]) {
      expect(buildRunPlan(["x"], settings({ network }), host()).warnings.some((w) => w.includes("--network"))).toBe(false);
    }
  });

  test("--allow ptrace: one warning, the io.sandbox.allow label, the plan's list; no capability comes with it", () => {
    const plain = buildRunPlan(["x"], settings(), host());
    expect(plain.allow).toEqual([]);
    expect(plain.create.Labels["io.sandbox.allow"]).toBeUndefined();
    expect(plain.warnings.some((w) => w.includes("ptrace"))).toBe(false);

    const plan = buildRunPlan(["x"], settings({ allow: ["ptrace", "ptrace"] }), host());
    expect(plan.allow).toEqual(["ptrace"]);
    expect(plan.create.Labels["io.sandbox.allow"]).toBe("ptrace");
    const warnings = plan.warnings.filter((w) => w.includes("--allow ptrace"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("outside the container stay out of reach");
    expect(plan.create.HostConfig.CapAdd).toEqual([]);
    expect(plan.create.HostConfig.CapDrop).toEqual(["ALL"]);
    // The profile itself is the caller's (prepare-run.ts adds the rule): the plan sends what it was given.
    expect(plan.create.HostConfig.SecurityOpt).toContain('seccomp={"defaultAction":"SCMP_ACT_ERRNO"}');
  });

  test("labels mark the container as ours", () => {
    const plan = buildRunPlan(["python3", "app.py"], settings(), host());
    expect(plan.create.Labels["io.sandbox.managed"]).toBe("true");
    expect(plan.create.Labels["io.sandbox.workspace"]).toBe("/home/me/project");
    expect(plan.create.Labels["io.sandbox.command"]).toBe('["python3","app.py"]');
    expect(plan.create.Labels["io.sandbox.seccomp.sha256"]).toBe("abc");
    expect(plan.name).toBe("sandbox-python3-deadbeef");
  });

  test("setup steps wrap the command in sh and exec it", () => {
    const plan = buildRunPlan(["node", "x.js"], settings({ setup: ["npm ci"] }), host());
    expect(plan.create.Entrypoint).toEqual(["/bin/sh"]);
    expect(plan.create.Cmd.slice(-2)).toEqual(["node", "x.js"]);
    expect(plan.create.Cmd[1]).toContain("exec \"$@\"");
  });

  test("a caller without uid (Windows) runs as 1000:1000", () => {
    expect(buildRunPlan(["x"], settings(), host({ uid: undefined, gid: undefined })).create.User).toBe("1000:1000");
  });
});

describe("containerName", () => {
  test("uses the command's base name, sanitised", () => {
    expect(containerName(["/usr/bin/python3"], "ab12")).toBe("sandbox-python3-ab12");
    expect(containerName(["--weird!!"], "ab12")).toBe("sandbox-weird-ab12");
    expect(containerName([], "ab12")).toBe("sandbox-run-ab12");
  });
});
