/**
 * `--allow ptrace`, the debugging escape, against the real engine (Docker,
 * then Podman): a debugger's work fails without it and works with it, and a
 * process outside the container cannot be traced either way.
 *
 * The test image has no strace; its probe (test/fixtures/probe/probe.c) does
 * what strace and py-spy do: ptrace_trace is `strace -f CMD` (the child asks
 * to be traced, is stopped at every syscall, has its memory read, runs to its
 * exit), process_vm_child writes and reads a child's memory, ptrace_sibling
 * attaches to a child, and ptrace_attach=PID attaches to any PID.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectContainer, removeContainer } from "../../src/engine/containers.ts";
import { defaultSeccompProfile, defaultSeccompText, serializeProfile } from "../../src/security/seccomp.ts";
import { managedContainers, testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE, type RunOpts, type RunResult } from "../helpers/sandbox.ts";

const work = mkdtempSync(join(tmpdir(), "sandbox-ptrace-"));
const tag = `io.sandbox.workspace=${work}`;

afterAll(async () => {
  const engine = await testEngine();
  for (const c of await managedContainers(tag)) await removeContainer(engine, c.Id, { force: true });
  rmSync(work, { recursive: true, force: true });
});

function run(args: string[], opts: RunOpts = {}): Promise<RunResult> {
  return runSandbox(["run", "--image", TEST_IMAGE, ...args], { cwd: work, ...opts });
}

/** `probe` lines: NAME errno=E result=R. */
function probeResults(r: RunResult): Record<string, string> {
  const results: Record<string, string> = {};
  for (const line of r.stdout.toString().split("\n")) {
    const m = /^(\S+) errno=(\S+) result=\S+$/.exec(line);
    if (m) results[m[1] as string] = m[2] as string;
  }
  return results;
}

const DEBUGGER_PROBES = ["ptrace_trace", "process_vm_child", "ptrace_sibling", "process_vm_readv"];

const WARNING = "warning: --allow ptrace";

/** `sandbox doctor --json`, the part read here. */
type DoctorView = { ok: boolean; protections: Array<{ protection: string; status: string; why: string }> };

/** A live process of the host, by its pid file: the engine's daemon. */
function daemonPid(): number | undefined {
  const file = IS_PODMAN ? "/run/sandbox-test/podman.pid" : "/var/run/docker.pid";
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Host processes outside the container: the test runner, the engine's daemon
 * and, written to the workspace once it is spawned, the sandbox CLI process
 * that runs the container. The container waits for that file, lists the PIDs
 * it can see, then tries PTRACE_ATTACH on each host PID.
 */
async function attachOutside(flags: string[]): Promise<{ r: RunResult; results: Record<string, string>; visible: string[]; hostPids: number[] }> {
  const pidFile = join(work, `cli-${flags.join("_") || "plain"}.pid`);
  rmSync(pidFile, { force: true });
  const known = [process.pid, ...(daemonPid() !== undefined ? [daemonPid() as number] : [])];
  const script = [
    `while [ ! -s /work/${pidFile.split("/").pop()} ]; do sleep 0.05; done`,
    `cli=$(cat /work/${pidFile.split("/").pop()})`,
    'echo "visible: $(ls /proc | grep -E "^[0-9]+$" | tr "\\n" " ")"',
    `exec probe ptrace_sibling ptrace_attach=$cli ${known.map((pid) => `ptrace_attach=${pid}`).join(" ")}`,
  ].join("\n");
  let cliPid = 0;
  const r = await run([...flags, "sh", "-c", script], {
    onSpawn: (child) => {
      cliPid = child.pid ?? 0;
      writeFileSync(pidFile, `${cliPid}\n`);
    },
  });
  const visible = (/^visible: (.*)$/m.exec(r.stdout.toString())?.[1] ?? "").trim().split(/\s+/);
  return { r, results: probeResults(r), visible, hostPids: [cliPid, ...known] };
}

describe("--allow ptrace", () => {
  test("without it, what a debugger does is refused by seccomp (EPERM), and sandbox does not warn", async () => {
    const r = await run(["probe", ...DEBUGGER_PROBES]);
    expect(r.code).toBe(0);
    expect(probeResults(r)).toEqual(Object.fromEntries(DEBUGGER_PROBES.map((name) => [name, "EPERM"])));
    expect(r.stderr).not.toContain(WARNING);
  }, 60_000);

  test("with it, `strace -f`'s work succeeds (trace to the end, read and write a child's memory), with one warning and no capability", async () => {
    const r = await run(["--allow", "ptrace", "sh", "-c", `probe ${DEBUGGER_PROBES.join(" ")}; grep -E '^Cap(Eff|Prm|Bnd):' /proc/self/status`]);
    expect(r.code).toBe(0);
    expect(probeResults(r)).toEqual(Object.fromEntries(DEBUGGER_PROBES.map((name) => [name, "0"])));
    expect(r.stderr.split(WARNING).length - 1).toBe(1);
    // No CAP_SYS_PTRACE (nor any other) came with it.
    for (const set of ["CapEff", "CapPrm", "CapBnd"]) expect(r.stdout.toString()).toMatch(new RegExp(`${set}:\\s+0000000000000000`));
  }, 60_000);

  test("a process outside the container cannot be traced: EPERM without --allow, ESRCH (not in the PID namespace) with it", async () => {
    const without = await attachOutside([]);
    // probe exits 0 when every attempt was denied.
    expect(without.r.code).toBe(0);
    expect(without.results.ptrace_sibling).toBe("EPERM");
    for (const pid of without.hostPids) expect({ pid, errno: without.results[`ptrace_attach=${pid}`] }).toEqual({ pid, errno: "EPERM" });

    const withAllow = await attachOutside(["--allow", "ptrace"]);
    expect(withAllow.r.code).toBe(1);
    // The same call works on a process of the container...
    expect(withAllow.results.ptrace_sibling).toBe("0");
    // ...and the host's processes (the sandbox CLI, the test runner, the engine's daemon) do not exist in there.
    expect(withAllow.hostPids.length).toBeGreaterThanOrEqual(2);
    for (const pid of withAllow.hostPids) {
      expect(pid).toBeGreaterThan(0);
      expect(withAllow.visible).not.toContain(String(pid));
      expect({ pid, errno: withAllow.results[`ptrace_attach=${pid}`] }).toEqual({ pid, errno: "ESRCH" });
    }
  }, 60_000);

  test("security.allow in the user's config works; .sandbox.yml cannot set it", async () => {
    const config = join(work, "user-config.yaml");
    writeFileSync(config, "security:\n  allow: [ptrace]\n");
    const r = await run(["probe", "ptrace_trace"], { env: { SANDBOX_CONFIG: config } });
    expect(r.code).toBe(1);
    expect(probeResults(r)).toEqual({ ptrace_trace: "0" });
    expect(r.stderr).toContain(WARNING);

    const repo = mkdtempSync(join(work, "repo-"));
    writeFileSync(join(repo, ".sandbox.yml"), "security:\n  allow: [ptrace]\n");
    // Trusted for this run (an untrusted file is ignored altogether): still refused.
    const refused = await runSandbox(["run", "--image", TEST_IMAGE, "--trust-workspace-config", "probe", "ptrace_trace"], { cwd: repo });
    expect(refused.code).toBe(125);
    expect(refused.stderr).toContain(".sandbox.yml");
    expect(refused.stdout.toString()).toBe("");
  }, 60_000);

  test("a custom --seccomp profile gets the same rule", async () => {
    const path = join(work, "custom-profile.json");
    writeFileSync(path, serializeProfile(defaultSeccompProfile()));
    const plain = await run(["--seccomp", path, "probe", "ptrace_trace", "process_vm_child"]);
    expect(probeResults(plain)).toEqual({ ptrace_trace: "EPERM", process_vm_child: "EPERM" });
    const loosened = await run(["--seccomp", path, "--allow", "ptrace", "probe", "ptrace_trace", "process_vm_child"]);
    expect(probeResults(loosened)).toEqual({ ptrace_trace: "0", process_vm_child: "0" });
  }, 60_000);

  test("--dry-run and inspect show it: the label, a profile hash other than the default's, ptrace allowed on purpose", async () => {
    const dry = await run(["--dry-run", "--allow", "ptrace", "true"]);
    expect(dry.code).toBe(0);
    const view = JSON.parse(dry.stdout.toString());
    expect(view.create.Labels["io.sandbox.allow"]).toBe("ptrace");
    expect(view.security.seccomp).toBe("default");
    expect(view.security.seccompSha256).not.toBe(defaultSeccompText().hash);
    expect(view.security.capAdd).toEqual([]);
    expect(view.warnings.some((w: string) => w.startsWith("--allow ptrace"))).toBe(true);

    const name = `sandbox-ptrace-${process.pid}-${Date.now().toString(36)}`;
    const kept = await run(["--keep", "--name", name, "--allow", "ptrace", "true"]);
    expect(kept.code).toBe(0);
    const details = await inspectContainer(await testEngine(), name);
    expect(details?.Config.Labels?.["io.sandbox.seccomp.sha256"]).toBe(view.security.seccompSha256);
    const text = await runSandbox(["inspect", name], { cwd: work });
    expect(text.code).toBe(0);
    expect(text.stdout.toString()).toMatch(/ptrace +allowed on purpose \(--allow ptrace\)/);
    expect(text.stdout.toString()).not.toContain("Warnings");
    const json = JSON.parse((await runSandbox(["inspect", "--json", name], { cwd: work })).stdout.toString());
    expect(json.security.allow).toEqual(["ptrace"]);
    expect(json.security.ptrace).toMatchObject({ allowed: true, onPurpose: true });
    expect(json.security.capabilities).toEqual([]);

    const plainName = `${name}-plain`;
    expect((await run(["--keep", "--name", plainName, "true"])).code).toBe(0);
    const plain = JSON.parse((await runSandbox(["inspect", "--json", plainName], { cwd: work })).stdout.toString());
    expect(plain.security.allow).toEqual([]);
    expect(plain.security.ptrace).toMatchObject({ allowed: false, onPurpose: false });
  }, 60_000);

  test("sandbox doctor reports it as loosened by the user's config, and still passes", async () => {
    const config = join(work, "doctor-config.yaml");
    writeFileSync(config, "security:\n  allow: [ptrace]\n");
    const r = await runSandbox(["doctor", "--image", TEST_IMAGE, "--json"], { cwd: work, env: { SANDBOX_CONFIG: config } });
    const view = JSON.parse(r.stdout.toString()) as DoctorView;
    const row = view.protections.find((p) => p.protection === "ptrace");
    expect(row).toMatchObject({ status: "loosened" });
    expect(row?.why).toContain(config);
    // Loosened on purpose is not a failure: every protection of the test engine stays active.
    expect(r.code).toBe(0);
    expect(view.ok).toBe(true);
    // egress-host is n/a on Podman (egress runs are Docker's only: test/integration/doctor.test.ts).
    expect(view.protections.filter((p) => p.status !== "active" && p.protection !== "cpu-limit" && !(p.protection === "egress-host" && p.status === "n/a") && p !== row)).toEqual([]);
    const text = await runSandbox(["doctor", "--image", TEST_IMAGE], { cwd: work, env: { SANDBOX_CONFIG: config } });
    expect(text.code).toBe(0);
    expect(text.stdout.toString()).toMatch(/^ptrace +loosened +allowed by security\.allow/m);

    const plain = JSON.parse((await runSandbox(["doctor", "--image", TEST_IMAGE, "--json"], { cwd: work })).stdout.toString()) as DoctorView;
    expect(plain.protections.some((p) => p.protection === "ptrace")).toBe(false);
  }, 120_000);
});
