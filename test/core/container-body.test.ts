import { describe, expect, test } from "bun:test";
import { finalBody, NO_PROXY_VALUE, type RunFacts } from "../../src/core/container-body.ts";
import type { MountSpec } from "../../src/core/engine-api.ts";
import { SecurityError } from "../../src/core/errors.ts";
import { buildRunPlan, type RunSettings } from "../../src/core/plan.ts";
import { testSettings } from "../helpers/run-settings.ts";

const host = {
  workspace: "/home/me/project",
  uid: 1000,
  gid: 1000,
  env: {},
  stdinIsTTY: false,
  stdoutIsTTY: false,
  version: "0.1.0",
  now: new Date("2026-01-01T00:00:00Z"),
  randomId: "0123abcd",
};
const plan = (over: Partial<RunSettings> = {}) =>
  buildRunPlan(["sh"], testSettings({ extraMounts: [{ Type: "bind", Source: "/home/me/.cache/sandbox", Target: "/home/sandbox/.cache" }], ...over }), host);

const guardMounts: MountSpec[] = [
  { Type: "bind", Source: "/tmp/sandbox-mask-x/empty", Target: "/work/.env", ReadOnly: true },
  { Type: "bind", Source: "/home/me/project/.git/hooks", Target: "/work/.git/hooks", ReadOnly: true },
  { Type: "bind", Source: "/home/me/project/.git", Target: "/work/.git", ReadOnly: false },
];
const docker: RunFacts = { flavor: "docker", engineLocal: true, guardMounts };

describe("finalBody", () => {
  test("a local Docker engine: the workspace bound, the guard's mounts after the plan's, removed by the engine", () => {
    const { body, workspaceMode, copyExcluded } = finalBody(plan(), docker);
    expect(workspaceMode).toBe("bind");
    expect(body.HostConfig.Mounts.map((m) => m.Target)).toEqual(["/work", "/home/sandbox/.cache", "/work/.env", "/work/.git/hooks", "/work/.git"]);
    expect(body.HostConfig.AutoRemove).toBe(true);
    expect(copyExcluded).toEqual([]);
  });

  test("no engine-side copy of the output: the log driver is none, on Docker and on Podman", () => {
    expect(finalBody(plan(), docker).body.HostConfig.LogConfig).toEqual({ Type: "none", Config: {} });
    expect(finalBody(plan(), { ...docker, flavor: "podman", seccompPath: "/s/seccomp-abc.json" }).body.HostConfig.LogConfig).toEqual({ Type: "none", Config: {} });
    expect(finalBody(plan(), { ...docker, engineLocal: false }).body.HostConfig.LogConfig).toEqual({ Type: "none", Config: {} });
  });

  test("--keep and Podman leave removal to the session", () => {
    expect(finalBody(plan({ keep: true }), docker).body.HostConfig.AutoRemove).toBe(false);
    expect(finalBody(plan(), { ...docker, flavor: "podman", seccompPath: "/s/seccomp-abc.json" }).body.HostConfig.AutoRemove).toBe(false);
  });

  test("a remote engine settles auto as copy: a volume, no bind mounts inside the workspace, read-only guard paths kept out of the copy", () => {
    const { body, workspaceMode, copyExcluded } = finalBody(plan(), { ...docker, engineLocal: false });
    expect(workspaceMode).toBe("copy");
    expect(body.HostConfig.Mounts).toEqual([
      { Type: "volume", Target: "/work", VolumeOptions: { NoCopy: true } },
      { Type: "bind", Source: "/home/me/.cache/sandbox", Target: "/home/sandbox/.cache" },
    ]);
    // The read-write .git pin is not an exclusion: left in, it would keep all of .git out.
    expect(copyExcluded).toEqual([".env", ".git/hooks"]);
    expect(body.HostConfig.AutoRemove).toBe(false);
  });

  test("an explicit --workspace-mode bind stays bind on a remote engine", () => {
    expect(finalBody(plan({ workspaceMode: "bind" }), { ...docker, engineLocal: false }).workspaceMode).toBe("bind");
  });

  test("egress: proxy variables (ours win) and DNS at the proxy's address", () => {
    const { body } = finalBody(plan({ envFlags: [{ name: "HTTPS_PROXY", value: "http://mine:1", fromHost: false }] }), { ...docker, proxy: { host: "172.18.0.1", port: 3128 } });
    expect(body.Env.filter((e) => e.startsWith("HTTPS_PROXY="))).toEqual(["HTTPS_PROXY=http://172.18.0.1:3128"]);
    expect(body.Env).toContain(`NO_PROXY=${NO_PROXY_VALUE}`);
    expect(body.HostConfig.Dns).toEqual(["172.18.0.1"]);
    expect(finalBody(plan(), docker).body.HostConfig.Dns).toBeUndefined();
  });

  test("Podman: the profile by path, tmpfs owned with U; a remote Podman cannot take our profile", () => {
    const { body } = finalBody(plan(), { ...docker, flavor: "podman", seccompPath: "/state/seccomp/seccomp-abc.json" });
    expect(body.HostConfig.SecurityOpt).toContain("seccomp=/state/seccomp/seccomp-abc.json");
    expect(body.HostConfig.Tmpfs["/home/sandbox"]).toEndWith(",U");
    expect(() => finalBody(plan(), { ...docker, flavor: "podman", engineLocal: false })).toThrow(SecurityError);
  });

  test("the plan is not changed", () => {
    const p = plan();
    const before = JSON.stringify(p);
    finalBody(p, { ...docker, proxy: { host: "172.18.0.1", port: 3128 } });
    expect(JSON.stringify(p)).toBe(before);
  });
});
