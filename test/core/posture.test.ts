import { describe, expect, test } from "bun:test";
import type { ContainerDetails } from "../../src/engine/containers.ts";
import {
  displayCommand,
  effectiveCapabilities,
  ENGINE_DEFAULT_CAPS,
  hasNoNewPrivileges,
  profileAllows,
  renderPosture,
  seccompPosture,
  sha256Hex,
  summarisePosture,
} from "../../src/core/posture.ts";

const PROFILE = '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW","names":["read"]}]}';
const PROFILE_HASH = sha256Hex(PROFILE);
const BUILT_IN = PROFILE_HASH;
const NOW = Date.parse("2026-01-01T12:00:00Z");
const SECRET = "s3cr3t-value-never-shown";

/** Shaped after what Docker 20.10 returns for `sandbox run --keep --memory 256m --network none --env FOO=...`. */
function details(over: { labels?: Record<string, string>; hostConfig?: Record<string, unknown>; state?: Partial<ContainerDetails["State"]>; mounts?: ContainerDetails["Mounts"] } = {}): ContainerDetails {
  return {
    Id: "f18232f9bf691932455bd598f7f225e1dff1a30daf238a5d4439b26c8d838266",
    Name: "/sandbox-sh-1599b01f",
    Created: "2026-01-01T11:00:00.130143531Z",
    Path: "sh",
    Args: ["-c", "exit 3"],
    State: {
      Status: "exited",
      Running: false,
      ExitCode: 3,
      OOMKilled: false,
      Error: "",
      StartedAt: "2026-01-01T11:00:01.000Z",
      FinishedAt: "2026-01-01T11:00:31.000Z",
      ...over.state,
    },
    Config: {
      Image: "sandbox-test/busybox:1",
      Cmd: ["sh", "-c", "exit 3"],
      Env: [`FOO=${SECRET}`, "HOME=/home/sandbox", "SANDBOX=1"],
      User: "1000:1000",
      Labels: {
        "io.sandbox.managed": "true",
        "io.sandbox.workspace": "/home/me/app",
        "io.sandbox.command": '["sh","-c","exit 3"]',
        "io.sandbox.agent": "generic",
        "io.sandbox.version": "0.1.0",
        "io.sandbox.created": "2026-01-01T11:00:00.095Z",
        "io.sandbox.seccomp": "default",
        "io.sandbox.seccomp.sha256": PROFILE_HASH,
        "io.sandbox.env": "FOO,LANG,TERM",
        "io.sandbox.network": "none",
        ...over.labels,
      },
    },
    HostConfig: {
      NetworkMode: "none",
      CapAdd: [],
      CapDrop: ["ALL"],
      Privileged: false,
      ReadonlyRootfs: true,
      SecurityOpt: ["no-new-privileges:true", `seccomp=${PROFILE}`],
      Tmpfs: { "/tmp": "rw,exec,nosuid,nodev,size=1073741824,mode=1777" },
      Memory: 268435456,
      MemorySwap: 268435456,
      NanoCpus: 0,
      PidsLimit: 512,
      ...over.hostConfig,
    },
    Mounts: over.mounts ?? [
      { Type: "bind", Source: "/home/me/app", Destination: "/work", RW: true },
      { Type: "volume", Name: "sandbox-state-claude", Source: "/var/lib/docker/volumes/x/_data", Destination: "/home/sandbox/.claude", RW: true },
    ],
    Image: "sha256:470b",
  };
}

const summarise = (d: ContainerDetails) => summarisePosture(d, { now: NOW, builtInSeccompHash: BUILT_IN });

describe("effectiveCapabilities", () => {
  test("CapDrop ALL leaves only what was added", () => {
    expect(effectiveCapabilities(["ALL"], [], false)).toEqual([]);
    expect(effectiveCapabilities(["ALL"], ["NET_BIND_SERVICE", "CHOWN"], false)).toEqual(["CHOWN", "NET_BIND_SERVICE"]);
  });
  test("without ALL the engine's default set applies, minus drops", () => {
    const caps = effectiveCapabilities(["NET_RAW"], [], false);
    expect(caps).not.toContain("NET_RAW");
    expect(caps.length).toBe(ENGINE_DEFAULT_CAPS.length - 1);
  });
  test("CAP_ prefixes and case are normalised", () => {
    expect(effectiveCapabilities(["cap_all"], ["CAP_SYS_ADMIN"], false)).toEqual(["SYS_ADMIN"]);
  });
  test("privileged or --cap-add ALL means everything", () => {
    expect(effectiveCapabilities(["ALL"], [], true)).toEqual(["ALL"]);
    expect(effectiveCapabilities(["ALL"], ["ALL"], false)).toEqual(["ALL"]);
  });
});

describe("seccompPosture", () => {
  const labels = { "io.sandbox.seccomp": "default", "io.sandbox.seccomp.sha256": PROFILE_HASH };
  test("the hash of the text after seccomp= is compared with the label", () => {
    const s = seccompPosture([`seccomp=${PROFILE}`], labels, BUILT_IN);
    expect(s).toMatchObject({ kind: "default", sha256: PROFILE_HASH, source: "engine", matchesLabel: true });
  });
  test("the old seccomp: form is read too", () => {
    expect(seccompPosture([`seccomp:${PROFILE}`], labels, BUILT_IN).sha256).toBe(PROFILE_HASH);
  });
  test("a profile that differs from the label is custom and flagged", () => {
    const s = seccompPosture(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'], labels, BUILT_IN);
    expect(s.kind).toBe("custom");
    expect(s.matchesLabel).toBe(false);
  });
  test("a label hash matching a non-built-in profile keeps the label's kind", () => {
    const custom = '{"defaultAction":"SCMP_ACT_LOG"}';
    const s = seccompPosture([`seccomp=${custom}`], { "io.sandbox.seccomp": "custom", "io.sandbox.seccomp.sha256": sha256Hex(custom) }, BUILT_IN);
    expect(s).toMatchObject({ kind: "custom", matchesLabel: true });
  });
  test("unconfined is reported, and disagrees with a label that says default", () => {
    expect(seccompPosture(["seccomp=unconfined"], { "io.sandbox.seccomp": "unconfined" }, BUILT_IN)).toMatchObject({ kind: "unconfined", sha256: null, matchesLabel: true });
    expect(seccompPosture(["seccomp=unconfined"], labels, BUILT_IN).matchesLabel).toBe(false);
  });
  test("an engine that does not echo the profile falls back to the label, unverified", () => {
    expect(seccompPosture(["no-new-privileges"], labels, BUILT_IN)).toMatchObject({ kind: "default", sha256: PROFILE_HASH, source: "label", matchesLabel: null });
    expect(seccompPosture([], {}, BUILT_IN).kind).toBe("unknown");
  });
  test("a profile named by file path is not hashed as if it were the profile", () => {
    const s = seccompPosture(["seccomp=/etc/sandbox/profile.json"], labels, BUILT_IN);
    expect(s).toMatchObject({ kind: "default", sha256: PROFILE_HASH, source: "label", matchesLabel: null, path: "/etc/sandbox/profile.json" });
  });
});

describe("ptrace (--allow ptrace)", () => {
  const ESCAPED =
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW","names":["read"]},{"action":"SCMP_ACT_ALLOW","names":["ptrace","process_vm_readv","process_vm_writev"]}]}';
  const escapedLabels = { "io.sandbox.seccomp": "default", "io.sandbox.seccomp.sha256": sha256Hex(ESCAPED), "io.sandbox.allow": "ptrace" };

  test("profileAllows reads a plain answer from the profile, and says null when conditions decide", () => {
    expect(profileAllows(PROFILE, "ptrace")).toBe(false);
    expect(profileAllows(ESCAPED, "ptrace")).toBe(true);
    expect(profileAllows('{"defaultAction":"SCMP_ACT_ALLOW"}', "ptrace")).toBe(true);
    expect(profileAllows('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"ptrace","action":"SCMP_ACT_ERRNO"}]}', "ptrace")).toBe(false);
    // Docker's own default: ptrace only on Linux >= 4.8.
    expect(profileAllows('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}}]}', "ptrace")).toBeNull();
    expect(profileAllows('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}', "ptrace")).toBeNull();
    expect(profileAllows("not json", "ptrace")).toBeNull();
  });

  test("a default run: denied by seccomp, as the engine applied it", () => {
    const p = summarise(details());
    expect(p.security.allow).toEqual([]);
    expect(p.security.ptrace).toEqual({ allowed: false, source: "engine", onPurpose: false });
    expect(renderPosture(p, NOW)).toContain("ptrace             denied by seccomp\n");
  });

  test("--allow ptrace: allowed on purpose, read from the profile the engine applied and from the label", () => {
    const p = summarise(details({ labels: escapedLabels, hostConfig: { SecurityOpt: ["no-new-privileges:true", `seccomp=${ESCAPED}`] } }));
    expect(p.security.allow).toEqual(["ptrace"]);
    expect(p.security.ptrace).toEqual({ allowed: true, source: "engine", onPurpose: true });
    expect(p.security.seccomp).toMatchObject({ kind: "default", matchesLabel: true });
    expect(p.warnings).toEqual([]);
    const text = renderPosture(p, NOW);
    expect(text).toContain("ptrace             allowed on purpose (--allow ptrace)");
    expect(text).toContain("capabilities       none (all dropped)");
  });

  test("an engine that names the profile by path (Podman): from the label", () => {
    const p = summarise(details({ labels: escapedLabels, hostConfig: { SecurityOpt: ["seccomp=/var/lib/sandbox/seccomp/x.json"] } }));
    expect(p.security.ptrace).toEqual({ allowed: true, source: "label", onPurpose: true });
    expect(renderPosture(p, NOW)).toContain("(from sandbox's label)");
    const plain = summarise(details({ hostConfig: { SecurityOpt: ["seccomp=/var/lib/sandbox/seccomp/y.json"] } }));
    expect(plain.security.ptrace).toEqual({ allowed: false, source: "label", onPurpose: false });
  });

  test("label and engine disagreeing is a warning", () => {
    const denied = summarise(details({ labels: { "io.sandbox.allow": "ptrace" } }));
    expect(denied.warnings).toContain("ptrace: sandbox recorded --allow ptrace, but the engine's seccomp profile denies it.");
    const unrecorded = summarise(
      details({ labels: { "io.sandbox.seccomp.sha256": sha256Hex(ESCAPED) }, hostConfig: { SecurityOpt: [`seccomp=${ESCAPED}`] } }),
    );
    expect(unrecorded.warnings).toContain("ptrace: the engine's seccomp profile allows it, but sandbox did not record --allow ptrace.");
  });

  test("unconfined allows it, without --allow", () => {
    const p = summarise(details({ labels: { "io.sandbox.seccomp": "unconfined" }, hostConfig: { SecurityOpt: ["seccomp=unconfined"] } }));
    expect(p.security.ptrace).toMatchObject({ allowed: true, onPurpose: false });
    expect(renderPosture(p, NOW)).toContain("allowed (seccomp unconfined)");
  });
});

test("hasNoNewPrivileges accepts Docker's spellings and not :false", () => {
  expect(hasNoNewPrivileges(["no-new-privileges"])).toBe(true);
  expect(hasNoNewPrivileges(["no-new-privileges:true"])).toBe(true);
  expect(hasNoNewPrivileges(["no-new-privileges=true"])).toBe(true);
  expect(hasNoNewPrivileges(["no-new-privileges:false"])).toBe(false);
  expect(hasNoNewPrivileges([])).toBe(false);
});

describe("summarisePosture", () => {
  test("reads limits, user, network and read-only root from HostConfig", () => {
    const p = summarise(details());
    expect(p.security).toMatchObject({
      capabilities: [],
      readOnlyRoot: true,
      noNewPrivileges: true,
      user: "1000:1000",
      memoryBytes: 268435456,
      memorySwapBytes: 268435456,
      cpus: null,
      pidsLimit: 512,
      network: "none",
    });
    expect(p.security.seccomp.kind).toBe("default");
    expect(p.warnings).toEqual([]);
  });
  test("the engine's values win over the labels", () => {
    const p = summarise(details({ hostConfig: { NetworkMode: "bridge", ReadonlyRootfs: false, CapAdd: ["NET_RAW"] } }));
    expect(p.security.network).toBe("bridge");
    expect(p.security.readOnlyRoot).toBe(false);
    expect(p.security.capabilities).toEqual(["NET_RAW"]);
    expect(p.warnings.join(" ")).toContain("network");
  });
  test("an egress run (--egress, public mode) on its own network matches its label", () => {
    const egress = (NetworkMode: string) => summarise(details({ labels: { "io.sandbox.network": "egress" }, hostConfig: { NetworkMode } }));
    expect(egress("sandbox-sh-1599b01f-egress").warnings).toEqual([]);
    expect(egress("sandbox-sh-1599b01f-egress").security.network).toBe("sandbox-sh-1599b01f-egress");
    expect(egress("bridge").warnings.join(" ")).toContain("network");
  });
  test("cpus from NanoCpus or CpuQuota/CpuPeriod; 0 and -1 pids mean unlimited", () => {
    expect(summarise(details({ hostConfig: { NanoCpus: 1_500_000_000 } })).security.cpus).toBe(1.5);
    expect(summarise(details({ hostConfig: { CpuQuota: 50_000, CpuPeriod: 100_000 } })).security.cpus).toBe(0.5);
    expect(summarise(details({ hostConfig: { PidsLimit: -1 } })).security.pidsLimit).toBeNull();
    expect(summarise(details({ hostConfig: { PidsLimit: 0, Memory: 0 } })).security).toMatchObject({ pidsLimit: null, memoryBytes: null });
  });
  test("state: exit code, OOM, times and duration", () => {
    const p = summarise(details({ state: { OOMKilled: true, ExitCode: 137 } }));
    expect(p.state).toMatchObject({ status: "exited", exitCode: 137, oomKilled: true, durationMs: 30_000, error: null });
  });
  test("Docker's FinishedAt a hair before StartedAt gives 0, not a negative duration", () => {
    const p = summarise(details({ state: { StartedAt: "2026-01-01T11:00:01.394Z", FinishedAt: "2026-01-01T11:00:01.393Z" } }));
    expect(p.state.durationMs).toBe(0);
  });
  test("a running container's duration runs to now; zero times are null", () => {
    const running = summarise(details({ state: { Status: "running", Running: true, FinishedAt: "0001-01-01T00:00:00Z" } }));
    expect(running.state.finishedAt).toBeNull();
    expect(running.state.durationMs).toBe(NOW - Date.parse("2026-01-01T11:00:01.000Z"));
    const never = summarise(details({ state: { Status: "created", StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z" } }));
    expect(never.state).toMatchObject({ startedAt: null, finishedAt: null, durationMs: null });
  });
  test("the workspace mount is told apart from every other mount, tmpfs included", () => {
    const p = summarise(details());
    expect(p.workspace).toEqual({ type: "bind", source: "/home/me/app", target: "/work", readOnly: false });
    expect(p.mounts.map((m) => [m.type, m.source, m.target])).toEqual([
      ["volume", "sandbox-state-claude", "/home/sandbox/.claude"],
      ["tmpfs", null, "/tmp"],
    ]);
  });
  test("the command comes from our label, or the engine's when the label was truncated", () => {
    expect(summarise(details()).command).toEqual(["sh", "-c", "exit 3"]);
    const truncated = summarise(details({ labels: { "io.sandbox.command": '["sh","-c","very long…' } }));
    expect(truncated.command).toEqual(["sh", "-c", "exit 3"]);
  });
  test("env NAMES come from the label; no value from Config.Env appears anywhere", () => {
    const p = summarise(details());
    expect(p.envNames).toEqual(["FOO", "LANG", "TERM"]);
    expect(JSON.stringify(p)).not.toContain(SECRET);
    expect(renderPosture(p, NOW)).not.toContain(SECRET);
  });
});

describe("renderPosture", () => {
  test("shows the posture in words", () => {
    const text = renderPosture(summarise(details()), NOW);
    expect(text).toContain("capabilities       none (all dropped)");
    expect(text).toContain(`sandbox default profile, sha256 ${PROFILE_HASH} (verified`);
    expect(text).toContain("read-only root     yes");
    expect(text).toContain("memory             256MiB (no swap)");
    expect(text).toContain("network            none");
    expect(text).toContain("env (names)        FOO, LANG, TERM");
    expect(text).toContain("status      exited (exit code 3)");
    expect(text).toContain("workspace  /home/me/app -> /work (rw)");
    expect(text).toContain("(59m ago)");
    expect(text).not.toContain("Warnings");
  });
  test("a seccomp mismatch is shown as a warning", () => {
    const text = renderPosture(summarise(details({ hostConfig: { SecurityOpt: ["seccomp=unconfined"] } })), NOW);
    expect(text).toContain("unconfined (no filter)");
    expect(text).toContain("does NOT match");
    expect(text).toContain("Warnings\n  seccomp: the engine applied unconfined");
  });
});

test("displayCommand quotes only words that need it", () => {
  expect(displayCommand(["sh", "-c", "exit 3"])).toBe("sh -c 'exit 3'");
  expect(displayCommand(["echo", "it's"])).toBe("echo 'it'\\''s'");
  expect(displayCommand(["npm", "run", "--prefix=/work/a"])).toBe("npm run --prefix=/work/a");
});
