import { SecurityError, UsageError } from "./errors.ts";
import type { RunPlan } from "./plan.ts";

/**
 * Fail closed: before a container may start, check that the engine will
 * apply every protection the plan asks for (run.ts checks while the
 * container is created and starts it only after; a refused one is removed).
 * An engine without seccomp, or without the memory cgroup, accepts the
 * container and only logs a warning ("Limitation discarded"); the command
 * would then run with less than `--dry-run` promised. Each check here names one protection; a run refuses
 * (exit 125) when one it needs is missing, unless the user passed
 * `--insecure-allow NAME` for it.
 *
 * `sandbox doctor` uses the same checks, then looks from inside a live
 * container (`evaluateProbe`). Pure: /info and the probe's output come in,
 * verdicts go out. See docs/guard.md.
 */

export const PROTECTIONS = ["seccomp", "no-new-privileges", "memory-limit", "swap-limit", "pids-limit", "cpu-limit", "runtime"] as const;
export type ProtectionName = (typeof PROTECTIONS)[number];

/** The part of GET /info the checks read (Docker and Podman's compatible API). */
export interface EngineInfo {
  SecurityOptions?: string[] | null;
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
  CpuCfsPeriod?: boolean;
  KernelVersion?: string;
  OSType?: string;
  DefaultRuntime?: string;
  CgroupVersion?: string;
  RuncCommit?: { ID?: string } | null;
}

export interface Check {
  protection: string;
  /** The plan asks for it: a failed check refuses the run. */
  required: boolean;
  ok: boolean;
  why: string;
}

/**
 * Runtimes known to apply an OCI spec's seccomp filter, no_new_privs and
 * cgroup limits (runc and its drop-ins), or to isolate more strongly than
 * that (gVisor, Kata and libkrun run the container in a sandbox kernel or a
 * VM). Anything else is unknown, so not trusted.
 */
export const KNOWN_RUNTIMES: ReadonlyMap<string, string> = new Map([
  ["runc", "runc"],
  ["io.containerd.runc.v2", "runc (containerd shim)"],
  ["io.containerd.runtime.v1.linux", "runc (containerd v1 shim)"],
  ["crun", "crun, a runc drop-in"],
  ["youki", "youki, a runc drop-in"],
  ["nvidia", "nvidia-container-runtime, a wrapper around runc"],
  ["runsc", "gVisor: a user-space kernel"],
  ["kata", "Kata Containers: a VM"],
  ["kata-runtime", "Kata Containers: a VM"],
  ["io.containerd.kata.v2", "Kata Containers: a VM"],
  ["krun", "libkrun: a VM"],
]);

/** Linux 3.5 added PR_SET_NO_NEW_PRIVS. */
const NNP_KERNEL: readonly [number, number] = [3, 5];

/** `name=seccomp,profile=default` (API ≥ 1.24) or the bare `seccomp` of older engines. */
export function securityOptionNames(options: readonly string[] | null | undefined): string[] {
  return (options ?? []).map((entry) => {
    const name = entry.split(",").find((part) => part.startsWith("name="));
    return name ? name.slice("name=".length) : entry;
  });
}

function kernelAtLeast(version: string | undefined, want: readonly [number, number]): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version ?? "");
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > want[0] || (major === want[0] && minor >= want[1]);
}

function flag(value: boolean | undefined, ok: string, missing: string): { ok: boolean; why: string } {
  if (value === true) return { ok: true, why: ok };
  if (value === false) return { ok: false, why: missing };
  return { ok: false, why: `the engine does not say (no such field in /info); ${missing}` };
}

/** What the engine says about each protection the plan may ask for. */
export function evaluatePreflight(info: EngineInfo, plan: RunPlan): Check[] {
  const host = plan.create.HostConfig;
  const checks: Check[] = [];

  const seccompWanted = plan.seccomp !== "unconfined";
  const hasSeccomp = securityOptionNames(info.SecurityOptions).includes("seccomp");
  checks.push({
    protection: "seccomp",
    required: seccompWanted,
    ok: hasSeccomp,
    why: !seccompWanted
      ? "not asked for (seccomp unconfined)"
      : hasSeccomp
        ? "the engine reports seccomp support (SecurityOptions)"
        : "the engine does not list seccomp in SecurityOptions: it would run the command without a system-call filter",
  });

  const nnpWanted = host.SecurityOpt.some((opt) => /^no-new-privileges(?::true|=true)?$/.test(opt));
  const nnpKernel = kernelAtLeast(info.KernelVersion, NNP_KERNEL);
  checks.push({
    protection: "no-new-privileges",
    required: nnpWanted,
    ok: nnpKernel !== false,
    why:
      nnpKernel === false
        ? `kernel ${info.KernelVersion} is older than ${NNP_KERNEL.join(".")}, which added no_new_privs: setuid programs could gain privileges`
        : nnpKernel === undefined
          ? "kernel version not reported; the engine applies no-new-privileges on every Linux it runs on"
          : `kernel ${info.KernelVersion} supports no_new_privs`,
  });

  const memory = flag(info.MemoryLimit, "the engine can limit memory", "the engine cannot limit memory (no memory cgroup): the limit would be dropped");
  checks.push({ protection: "memory-limit", required: host.Memory > 0, ...memory });

  const swap = flag(info.SwapLimit, "the engine can limit swap", "the engine cannot limit swap (no swap accounting): the command could swap beyond its memory limit");
  checks.push({ protection: "swap-limit", required: host.Memory > 0 && host.MemorySwap > 0, ...swap });

  const pids = flag(info.PidsLimit, "the engine can limit processes", "the engine cannot limit processes (no pids cgroup): a fork bomb would reach the host");
  checks.push({ protection: "pids-limit", required: host.PidsLimit > 0, ...pids });

  const cpuWanted = host.NanoCpus !== undefined && host.NanoCpus > 0;
  const cpu = flag(
    info.CpuCfsQuota === undefined || info.CpuCfsPeriod === undefined ? undefined : info.CpuCfsQuota && info.CpuCfsPeriod,
    "the engine can limit CPU (CFS quota)",
    "the engine cannot limit CPU (no CFS quota)",
  );
  checks.push({ protection: "cpu-limit", required: cpuWanted, ...cpu, why: cpuWanted ? cpu.why : `not asked for (no --cpus); ${cpu.why}` });

  const runtime = info.DefaultRuntime;
  const known = runtime === undefined ? undefined : KNOWN_RUNTIMES.get(runtime) ?? (/^kata/.test(runtime) ? "Kata Containers: a VM" : undefined);
  checks.push({
    protection: "runtime",
    required: true,
    ok: known !== undefined,
    why:
      runtime === undefined
        ? "the engine does not name its default runtime"
        : known !== undefined
          ? `default runtime ${runtime} (${known})`
          : `unknown default runtime "${runtime}": sandbox cannot tell whether it applies seccomp, no-new-privileges and cgroup limits`,
  });
  return checks;
}

/** Validates `--insecure-allow` values (repeatable, or comma-separated). */
export function parseInsecureAllow(values: readonly string[]): ProtectionName[] {
  const out: ProtectionName[] = [];
  for (const value of values.flatMap((v) => v.split(","))) {
    const name = value.trim().toLowerCase();
    if (!(PROTECTIONS as readonly string[]).includes(name)) {
      throw new UsageError(`sandbox run: --insecure-allow "${value}" is not a protection name`, {
        hint: `Names: ${PROTECTIONS.join(", ")}. See docs/guard.md.`,
      });
    }
    if (!out.includes(name as ProtectionName)) out.push(name as ProtectionName);
  }
  return out;
}

/**
 * Throws when a required protection cannot be applied and was not allowed
 * off; returns a warning for each one that was.
 */
export function enforcePreflight(checks: readonly Check[], allowed: readonly string[]): { warnings: string[] } {
  const failed = checks.filter((c) => c.required && !c.ok);
  const refused = failed.filter((c) => !allowed.includes(c.protection));
  if (refused.length > 0) {
    const names = refused.map((c) => c.protection);
    const lines = refused.map((c) => `${c.protection}: ${c.why}`).join("; ");
    throw new SecurityError(`refusing to run: the engine cannot apply ${names.join(", ")} (${lines})`, {
      hint: `Fix the engine (run 'sandbox doctor' for details), or accept the risk with ${names.map((n) => `--insecure-allow ${n}`).join(" ")}.`,
    });
  }
  return { warnings: failed.map((c) => `running without ${c.protection} (--insecure-allow ${c.protection}): ${c.why}`) };
}

// ------------------------------------------------------------ live probe

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

export type DoctorStatus = "active" | "inactive" | "n/a";

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
