import type { RunPlan } from "./plan.ts";
import type { Check } from "./preflight.ts";

/**
 * `sandbox doctor`'s live probe: a shell script run in a container planned
 * as `sandbox run` would plan it, and what its output says about each
 * protection. The engine's own answers are checked in preflight.ts; the
 * doctor's table (`doctorRows`) joins both. Pure: the probe's output comes
 * in, verdicts go out. See docs/guard.md.
 */

/** Where the probe's stand-in secret lives, and what it holds. */
export const PROBE_SECRET = { file: ".env", dirFile: ".ssh/id_ed25519", content: "sandbox-doctor-probe-secret" } as const;

/**
 * What `sandbox doctor` runs in the probe container: POSIX sh builtins only
 * (plus the image's sh), so any image with a shell can answer. One
 * `key=value` per line; the workspace is a throw-away folder holding a fake
 * secret and a fake `.git`.
 */
export const PROBE_SCRIPT = [
  "while IFS= read -r line; do case \"$line\" in CapEff:*|NoNewPrivs:*|Seccomp:*) echo \"status.$line\";; esac; done < /proc/self/status",
  "if ( : > /.sandbox-probe ) 2>/dev/null; then echo rootfs=writable; else echo rootfs=read-only; fi",
  "for f in memory.max memory.swap.max pids.max cpu.max memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu,cpuacct/cpu.cfs_quota_us cpu,cpuacct/cpu.cfs_period_us; do",
  '  if [ -r "/sys/fs/cgroup/$f" ]; then read -r v < "/sys/fs/cgroup/$f" && echo "cgroup.$f=$v"; fi',
  "done",
  `if [ -s ${PROBE_SECRET.file} ]; then echo mask.file=visible; elif [ -e ${PROBE_SECRET.file} ]; then echo mask.file=empty; else echo mask.file=absent; fi`,
  `if [ -e ${PROBE_SECRET.dirFile} ]; then echo mask.dir=visible; else echo mask.dir=hidden; fi`,
  "if ( : > .git/sandbox-probe ) 2>/dev/null; then echo git.write=ok; else echo git.write=denied; fi",
  "if ( : > .git/hooks/sandbox-probe ) 2>/dev/null; then echo protect.hooks=writable; else echo protect.hooks=read-only; fi",
  "if ( : >> .git/config ) 2>/dev/null; then echo protect.config=writable; else echo protect.config=read-only; fi",
  "if mv .git/hooks .git/hooks-moved 2>/dev/null; then echo protect.rename=allowed; else echo protect.rename=refused; fi",
  "echo probe=done",
].join("\n");

export type ProbeReport = Record<string, string>;

/** `key=value` lines; `status.CapEff:\t000…` becomes `status.CapEff` → `000…`. */
export function parseProbeOutput(text: string): ProbeReport {
  const out: ProbeReport = {};
  for (const line of text.split(/\r?\n/)) {
    const status = /^status\.([A-Za-z_]+):\s*(.*)$/.exec(line);
    if (status) {
      out[`status.${status[1]}`] = (status[2] ?? "").trim();
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).trim();
  }
  return out;
}

/** Linux capability numbers, for reading CapEff. */
const CAP_NUMBERS: Readonly<Record<string, number>> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13, IPC_LOCK: 14, IPC_OWNER: 15,
  SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_PACCT: 20, SYS_ADMIN: 21, SYS_BOOT: 22, SYS_NICE: 23,
  SYS_RESOURCE: 24, SYS_TIME: 25, SYS_TTY_CONFIG: 26, MKNOD: 27, LEASE: 28, AUDIT_WRITE: 29, AUDIT_CONTROL: 30,
  SETFCAP: 31, MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34, WAKE_ALARM: 35, BLOCK_SUSPEND: 36, AUDIT_READ: 37,
  PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};

/** "max" and the kernel's "no limit" sentinels (v1: ~2^63 rounded to a page) as undefined. */
function limitValue(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value >= 1n << 62n ? undefined : value;
}

/** A cgroup file's value, v2 name first, then v1. */
function cgroupValue(report: ProbeReport, v2: string, v1: string[]): { text: string | undefined; file: string | undefined } {
  for (const file of [v2, ...v1]) {
    const text = report[`cgroup.${file}`];
    if (text !== undefined) return { text, file };
  }
  return { text: undefined, file: undefined };
}

/** What the probe container saw, one verdict per protection. */
export function evaluateProbe(report: ProbeReport, plan: RunPlan): Check[] {
  const host = plan.create.HostConfig;
  const checks: Check[] = [];
  const done = report.probe === "done";
  const noAnswer = (what: string) => `the probe did not report ${what}`;

  const seccompMode = report["status.Seccomp"];
  const seccompWanted = plan.seccomp !== "unconfined";
  checks.push({
    protection: "seccomp",
    required: seccompWanted,
    ok: seccompMode === "2",
    why: seccompMode === undefined ? noAnswer("Seccomp in /proc/self/status") : seccompMode === "2" ? "filter active (Seccomp: 2)" : `no filter (Seccomp: ${seccompMode})`,
  });

  const nnp = report["status.NoNewPrivs"];
  checks.push({
    protection: "no-new-privileges",
    required: true,
    ok: nnp === "1",
    why: nnp === undefined ? noAnswer("NoNewPrivs") : nnp === "1" ? "set (NoNewPrivs: 1)" : `not set (NoNewPrivs: ${nnp})`,
  });

  const capEff = report["status.CapEff"];
  let allowedCaps = 0n;
  for (const cap of host.CapAdd) {
    const n = CAP_NUMBERS[cap];
    if (n !== undefined) allowedCaps |= 1n << BigInt(n);
  }
  const capValue = capEff !== undefined && /^[0-9a-fA-F]+$/.test(capEff) ? BigInt(`0x${capEff}`) : undefined;
  const extraCaps = capValue === undefined ? undefined : capValue & ~allowedCaps;
  checks.push({
    protection: "capabilities",
    required: true,
    ok: extraCaps === 0n,
    why:
      capValue === undefined
        ? noAnswer("CapEff")
        : extraCaps === 0n
          ? capValue === 0n
            ? "none effective (CapEff: 0)"
            : `only the ones added on purpose (CapEff: ${capEff})`
          : `unexpected effective capabilities (CapEff: ${capEff})`,
  });

  const rootfs = report.rootfs;
  checks.push({
    protection: "read-only-root",
    required: host.ReadonlyRootfs,
    ok: rootfs === "read-only",
    why: rootfs === undefined ? noAnswer("the root filesystem") : rootfs === "read-only" ? "writing to / fails" : "writing to / succeeded",
  });

  const memory = cgroupValue(report, "memory.max", ["memory/memory.limit_in_bytes"]);
  const memLimit = limitValue(memory.text);
  // The kernel rounds the limit down to whole pages.
  const memOk = memLimit !== undefined && memLimit <= BigInt(host.Memory) && memLimit > BigInt(host.Memory) - 65536n;
  checks.push({
    protection: "memory-limit",
    required: host.Memory > 0,
    ok: memOk,
    why: memory.file === undefined ? "no memory cgroup visible in the container" : memOk ? `${memory.file} = ${memory.text}` : `${memory.file} = ${memory.text}, expected ${host.Memory}`,
  });

  const swapV2 = report["cgroup.memory.swap.max"];
  const swapV1 = report["cgroup.memory/memory.memsw.limit_in_bytes"];
  const swapAllowed = BigInt(Math.max(0, host.MemorySwap - host.Memory));
  const swapOk =
    swapV2 !== undefined
      ? limitValue(swapV2) !== undefined && (limitValue(swapV2) as bigint) <= swapAllowed
      : swapV1 !== undefined && limitValue(swapV1) !== undefined && (limitValue(swapV1) as bigint) <= BigInt(host.MemorySwap);
  checks.push({
    protection: "swap-limit",
    required: host.Memory > 0 && host.MemorySwap > 0,
    ok: swapOk,
    why:
      swapV2 !== undefined
        ? `memory.swap.max = ${swapV2}${swapOk ? "" : `, expected at most ${swapAllowed}`}`
        : swapV1 !== undefined
          ? `memory.memsw.limit_in_bytes = ${swapV1}${swapOk ? "" : `, expected ${host.MemorySwap}`}`
          : "no swap accounting visible in the container",
  });

  const pids = cgroupValue(report, "pids.max", ["pids/pids.max"]);
  const pidsOk = pids.text === String(host.PidsLimit);
  checks.push({
    protection: "pids-limit",
    required: host.PidsLimit > 0,
    ok: pidsOk,
    why: pids.file === undefined ? "no pids cgroup visible in the container" : `${pids.file} = ${pids.text}${pidsOk ? "" : `, expected ${host.PidsLimit}`}`,
  });

  const cpuWanted = host.NanoCpus !== undefined && host.NanoCpus > 0;
  const cpuV2 = report["cgroup.cpu.max"];
  const quota = report["cgroup.cpu/cpu.cfs_quota_us"] ?? report["cgroup.cpu,cpuacct/cpu.cfs_quota_us"];
  const period = report["cgroup.cpu/cpu.cfs_period_us"] ?? report["cgroup.cpu,cpuacct/cpu.cfs_period_us"];
  const [q, p] = cpuV2 !== undefined ? cpuV2.split(/\s+/) : [quota, period];
  const cpus = q !== undefined && p !== undefined && /^\d+$/.test(q) && /^\d+$/.test(p) && Number(p) > 0 ? Number(q) / Number(p) : undefined;
  const cpuOk = cpuWanted && cpus !== undefined && Math.abs(cpus - (host.NanoCpus as number) / 1e9) < 0.01;
  checks.push({
    protection: "cpu-limit",
    required: cpuWanted,
    ok: cpuOk,
    why: !cpuWanted ? "not asked for (no --cpus)" : cpus === undefined ? "no CPU quota visible in the container" : `${cpus} CPUs${cpuOk ? "" : `, expected ${(host.NanoCpus as number) / 1e9}`}`,
  });

  const maskFile = report["mask.file"];
  const maskDir = report["mask.dir"];
  const maskOk = (maskFile === "empty" || maskFile === "absent") && maskDir === "hidden";
  checks.push({
    protection: "secret-mask",
    required: true,
    ok: maskOk,
    why: !done
      ? noAnswer("the masks")
      : maskOk
        ? `${PROBE_SECRET.file} reads empty, ${PROBE_SECRET.dirFile} is hidden`
        : `${PROBE_SECRET.file} is ${maskFile}, ${PROBE_SECRET.dirFile} is ${maskDir}`,
  });

  if (plan.workspaceMode === "copy") {
    // Nothing is mounted over the copied workspace: protected paths are kept
    // out of the copy and never written back (engine/workspace-copy.ts),
    // which the command cannot observe from inside.
    checks.push({ protection: "protect", required: true, ok: true, why: "copy mode: protected paths are not copied in and never written back" });
    return checks;
  }
  const gitWrite = report["git.write"];
  const protectOk = gitWrite === "ok" && report["protect.hooks"] === "read-only" && report["protect.config"] === "read-only" && report["protect.rename"] === "refused";
  checks.push({
    protection: "protect",
    required: true,
    ok: protectOk,
    why: !done
      ? noAnswer("the protected paths")
      : gitWrite !== "ok"
        ? "cannot tell: the container user cannot write to .git at all"
        : protectOk
          ? ".git/hooks and .git/config are read-only and cannot be moved aside; .git stays writable"
          : `.git/hooks ${report["protect.hooks"]}, .git/config ${report["protect.config"]}, moving .git/hooks ${report["protect.rename"]}`,
  });
  return checks;
}

/**
 * "loosened": turned off on purpose by the user's own config (`security.allow`);
 * "skipped": not checked, because the live probe did not run (core/doctor-report.ts).
 */
export type DoctorStatus = "active" | "inactive" | "n/a" | "loosened" | "skipped";

export interface DoctorRow {
  protection: string;
  status: DoctorStatus;
  why: string;
}

/**
 * One row per protection: active when every source that speaks about it
 * (the engine's /info, the live probe) says so. "n/a" only for what the
 * plan does not ask for by design (a CPU limit without --cpus).
 */
export function doctorRows(engine: readonly Check[], probe: readonly Check[]): DoctorRow[] {
  const order: string[] = [];
  for (const c of [...engine, ...probe]) if (!order.includes(c.protection)) order.push(c.protection);
  return order.map((protection) => {
    const all = [...engine, ...probe].filter((c) => c.protection === protection);
    const required = all.some((c) => c.required);
    const failing = all.filter((c) => !c.ok);
    if (!required && protection === "cpu-limit") return { protection, status: "n/a", why: all[0]?.why ?? "" };
    if (!required) return { protection, status: "inactive", why: all.map((c) => c.why).join("; ") };
    if (failing.length > 0) return { protection, status: "inactive", why: failing.map((c) => c.why).join("; ") };
    return { protection, status: "active", why: all.map((c) => c.why).join("; ") };
  });
}

/**
 * One row per escape the user's config allows (`security.allow`; doctor takes
 * no --allow flag, so its plan has only the config's): "loosened", which is
 * not a failure, but said out loud. `source` names the config file.
 */
export function escapeRows(plan: Pick<RunPlan, "allow" | "seccomp">, source: string): DoctorRow[] {
  const rows: DoctorRow[] = [];
  if (plan.allow.includes("ptrace")) {
    const how =
      plan.seccomp === "unconfined"
        ? "seccomp is unconfined anyway"
        : "seccomp allows ptrace and process_vm_readv/writev, so processes of the same container can trace each other; processes outside it are not in its PID namespace and stay out of reach";
    rows.push({ protection: "ptrace", status: "loosened", why: `allowed by security.allow in ${source}: ${how}` });
  }
  return rows;
}
