/**
 * What a container really runs with, read from the engine's inspect JSON.
 *
 * Labels say what sandbox asked for; the engine's HostConfig says what was
 * applied. `sandbox inspect` reports the latter, so a container changed by
 * hand, or made by a sandbox with other defaults, shows what it is. The one
 * exception is seccomp: engines echo the profile inconsistently (Docker
 * returns the whole JSON text, Podman may return nothing), so the label's
 * kind and hash are cross-checked against SecurityOpt when it is there.
 *
 * Config.Env is never read here: its values may be secrets. The variable
 * names come from our io.sandbox.env label.
 */
import { createHash } from "node:crypto";
import type { ContainerDetails } from "./engine-api.ts";
import { createdAt, formatAge } from "./age.ts";
import { formatDuration } from "./duration.ts";
import { LABELS } from "./labels.ts";
import { formatSize } from "./size.ts";

export type SeccompKind = "default" | "custom" | "unconfined" | "unknown";

export interface SeccompPosture {
  kind: SeccompKind;
  /** sha256 (hex) of the profile text; null when unconfined or unknown. */
  sha256: string | null;
  /** Where kind/sha256 come from: the engine's SecurityOpt, or only our label. */
  source: "engine" | "label";
  /** Engine and label agree (null when the engine did not echo the profile). */
  matchesLabel: boolean | null;
  label: { kind: string | null; sha256: string | null };
  /** A profile the engine names by file path (Podman reads seccomp=PATH) rather than echoing its text. */
  path: string | null;
}

/**
 * Whether processes of the container may trace each other (ptrace,
 * process_vm_readv/writev): sandbox's profile denies it unless `--allow
 * ptrace` added it. Judged from the profile the engine echoed when it did,
 * else from our labels.
 */
export interface PtracePosture {
  /** null: the profile allows it only under conditions (arguments, kernel), or nothing tells. */
  allowed: boolean | null;
  source: "engine" | "label";
  /** Our io.sandbox.allow label lists ptrace (`--allow ptrace`). */
  onPurpose: boolean;
}

export interface MountPosture {
  type: string;
  source: string | null;
  target: string;
  readOnly: boolean;
  /** tmpfs options as given to the engine (size, mode, exec). */
  options?: string;
}

export interface ContainerPosture {
  id: string;
  shortId: string;
  name: string;
  image: string;
  /** The command the user ran (our label), falling back to the engine's Path + Args. */
  command: string[];
  /** What the engine starts (differs from `command` when setup steps wrap it). */
  engineCommand: string[];
  agent: string | null;
  sandboxVersion: string | null;
  created: string | null;
  state: {
    status: string;
    running: boolean;
    exitCode: number;
    oomKilled: boolean;
    error: string | null;
    startedAt: string | null;
    finishedAt: string | null;
    durationMs: number | null;
  };
  workspace: MountPosture | null;
  mounts: MountPosture[];
  security: {
    /** Effective capability set: what remains after CapDrop, plus CapAdd. */
    capabilities: string[];
    privileged: boolean;
    capDrop: string[];
    capAdd: string[];
    seccomp: SeccompPosture;
    /** Escapes allowed on purpose (`--allow`, our io.sandbox.allow label). */
    allow: string[];
    ptrace: PtracePosture;
    readOnlyRoot: boolean;
    noNewPrivileges: boolean;
    /** Config.User; empty means the image's own user. */
    user: string;
    memoryBytes: number | null;
    memorySwapBytes: number | null;
    cpus: number | null;
    pidsLimit: number | null;
    network: string;
  };
  /** Names of the variables sandbox set; never their values. */
  envNames: string[];
  /** Where the engine's view and our labels disagree. */
  warnings: string[];
}

/**
 * Docker's default capability set, which applies when CapDrop does not say
 * ALL. sandbox always drops ALL, so this only matters for a container
 * changed after the fact; Podman's default set is slightly smaller.
 */
export const ENGINE_DEFAULT_CAPS: readonly string[] = Object.freeze([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "NET_RAW",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);

/** Docker's "never ran / still running" timestamp. */
const ZERO_TIME = /^0001-01-01/;

/** Engines spell capabilities `CAP_CHOWN` or `CHOWN`; compare in one form. */
function capName(name: string): string {
  return name.trim().toUpperCase().replace(/^CAP_/, "");
}

export function effectiveCapabilities(capDrop: readonly string[], capAdd: readonly string[], privileged: boolean): string[] {
  if (privileged) return ["ALL"];
  const drop = new Set(capDrop.map(capName));
  const add = capAdd.map(capName);
  if (add.includes("ALL")) return ["ALL"];
  const kept = drop.has("ALL") ? [] : ENGINE_DEFAULT_CAPS.filter((c) => !drop.has(c));
  return [...new Set([...kept, ...add])].sort();
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The seccomp entry of SecurityOpt: Docker accepts `seccomp=X` and the old
 * `seccomp:X`. The value is the profile's JSON text exactly as sent, so its
 * hash is comparable with the one in our label.
 */
export function seccompFromSecurityOpt(securityOpt: readonly string[]): { value: string } | undefined {
  for (const opt of securityOpt) {
    const match = /^seccomp[=:]/.exec(opt);
    if (match) return { value: opt.slice(match[0].length) };
  }
  return undefined;
}

export function seccompPosture(securityOpt: readonly string[], labels: Record<string, string>, builtInHash: string): SeccompPosture {
  const labelKind = labels[LABELS.seccomp] ?? null;
  const labelHash = labels[LABELS.seccompHash] ?? null;
  const label = { kind: labelKind, sha256: labelHash };
  const entry = seccompFromSecurityOpt(securityOpt);
  if (entry === undefined || (entry.value !== "unconfined" && !entry.value.trimStart().startsWith("{"))) {
    // Not echoed, or only as a file path whose content we cannot read from
    // here: all we have is what sandbox recorded when it made the container.
    const kind: SeccompKind = labelKind === "default" || labelKind === "custom" || labelKind === "unconfined" ? labelKind : "unknown";
    return { kind, sha256: labelHash, source: "label", matchesLabel: null, label, path: entry?.value ?? null };
  }
  if (entry.value === "unconfined") {
    return { kind: "unconfined", sha256: null, source: "engine", matchesLabel: labelKind === "unconfined", label, path: null };
  }
  const hash = sha256Hex(entry.value);
  if (hash === labelHash && (labelKind === "default" || labelKind === "custom")) {
    // The hash corroborates the label, so its kind stands even if an older
    // sandbox had a different built-in profile.
    return { kind: labelKind, sha256: hash, source: "engine", matchesLabel: true, label, path: null };
  }
  return { kind: hash === builtInHash ? "default" : "custom", sha256: hash, source: "engine", matchesLabel: false, label, path: null };
}

const PERMITTING = new Set(["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]);

/**
 * Does a seccomp profile (Docker's JSON format, as echoed by the engine) let
 * `syscall` through whatever its arguments? true or false when its rules say
 * so plainly; null when a rule naming it has argument, architecture, kernel
 * or capability conditions, or the text is not a profile.
 */
export function profileAllows(profileText: string, syscall: string): boolean | null {
  let profile: unknown;
  try {
    profile = JSON.parse(profileText);
  } catch {
    return null;
  }
  if (profile === null || typeof profile !== "object") return null;
  const { defaultAction, syscalls } = profile as { defaultAction?: unknown; syscalls?: unknown };
  if (typeof defaultAction !== "string") return null;
  const actions = new Set<string>();
  for (const entry of Array.isArray(syscalls) ? (syscalls as unknown[]) : []) {
    if (entry === null || typeof entry !== "object") continue;
    const e = entry as { name?: unknown; names?: unknown; action?: unknown; args?: unknown; includes?: unknown; excludes?: unknown };
    const names = Array.isArray(e.names) ? e.names : [e.name];
    if (!names.includes(syscall)) continue;
    const conditional = (Array.isArray(e.args) && e.args.length > 0) || hasConditions(e.includes) || hasConditions(e.excludes);
    if (conditional || typeof e.action !== "string") return null;
    actions.add(PERMITTING.has(e.action) ? "allow" : "refuse");
  }
  if (actions.size > 1) return null;
  if (actions.size === 1) return actions.has("allow");
  return PERMITTING.has(defaultAction);
}

/** A Docker includes/excludes filter that limits a rule (non-empty arches, caps or a minKernel). */
function hasConditions(filter: unknown): boolean {
  if (filter === null || typeof filter !== "object") return false;
  return Object.values(filter).some((v) => (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== null && v !== ""));
}

/** Escapes in our io.sandbox.allow label. */
export function allowLabel(labels: Record<string, string>): string[] {
  return (labels[LABELS.allow] ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "");
}

export function ptracePosture(securityOpt: readonly string[], labels: Record<string, string>, seccomp: SeccompPosture): PtracePosture {
  const onPurpose = allowLabel(labels).includes("ptrace");
  if (seccomp.kind === "unconfined") return { allowed: true, source: seccomp.source, onPurpose };
  const entry = seccompFromSecurityOpt(securityOpt);
  if (seccomp.source === "engine" && entry !== undefined) {
    return { allowed: profileAllows(entry.value, "ptrace"), source: "engine", onPurpose };
  }
  // Only our labels: sandbox's own profile denies ptrace unless --allow added it.
  return { allowed: onPurpose ? true : seccomp.kind === "default" ? false : null, source: "label", onPurpose };
}

/** `no-new-privileges`, `no-new-privileges:true` or `=true` turn it on; `:false` does not. */
export function hasNoNewPrivileges(securityOpt: readonly string[]): boolean {
  return securityOpt.some((opt) => /^no-new-privileges(?:[:=](?:true|1))?$/i.test(opt));
}

function timestamp(text: string | undefined): string | null {
  if (!text || ZERO_TIME.test(text) || !Number.isFinite(Date.parse(text))) return null;
  return text;
}

/** The command from our label, or undefined when it is truncated or not a JSON list of words. */
export function parseCommandLabel(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value;
  } catch {
    // Truncated (over 1 KiB, ends in "…") or hand-edited: fall back to the engine's.
  }
  return undefined;
}

function positive(n: number | null | undefined): number | null {
  return typeof n === "number" && n > 0 ? n : null;
}

export function summarisePosture(details: ContainerDetails, opts: { now: number; builtInSeccompHash: string }): ContainerPosture {
  const labels = details.Config.Labels ?? {};
  const hc = details.HostConfig;
  const securityOpt = hc.SecurityOpt ?? [];
  const capDrop = hc.CapDrop ?? [];
  const capAdd = hc.CapAdd ?? [];
  const privileged = hc.Privileged === true;

  const startedAt = timestamp(details.State.StartedAt);
  const finishedAt = details.State.Running ? null : timestamp(details.State.FinishedAt);
  let durationMs: number | null = null;
  if (startedAt !== null) {
    const end = details.State.Running ? opts.now : finishedAt === null ? null : Date.parse(finishedAt);
    // Docker may stamp FinishedAt a hair before StartedAt for instant exits.
    if (end !== null) durationMs = Math.max(0, end - Date.parse(startedAt));
  }

  const mounts: MountPosture[] = (details.Mounts ?? []).map((m) => ({
    type: m.Type,
    source: m.Type === "volume" ? (m.Name ?? m.Source ?? null) : (m.Source ?? null),
    target: m.Destination,
    readOnly: !m.RW,
  }));
  // HostConfig.Tmpfs mounts are not listed in Mounts by Docker.
  const tmpfs = (hc.Tmpfs ?? {}) as Record<string, string>;
  for (const [target, options] of Object.entries(tmpfs)) {
    if (mounts.some((m) => m.target === target)) continue;
    mounts.push({ type: "tmpfs", source: null, target, readOnly: /(^|,)ro(,|$)/.test(options), options });
  }
  const workspaceSource = labels[LABELS.workspace];
  const workspace =
    mounts.find((m) => m.type === "bind" && workspaceSource !== undefined && m.source === workspaceSource) ??
    mounts.find((m) => m.type === "bind" && m.target === "/work") ??
    null;
  const others = mounts.filter((m) => m !== workspace).sort((a, b) => a.target.localeCompare(b.target));

  const nano = positive(hc.NanoCpus);
  const quota = positive(hc.CpuQuota as number | undefined);
  const period = positive(hc.CpuPeriod as number | undefined) ?? 100_000;
  const cpus = nano !== null ? nano / 1e9 : quota !== null ? quota / period : null;

  const seccomp = seccompPosture(securityOpt, labels, opts.builtInSeccompHash);
  const warnings: string[] = [];
  if (seccomp.matchesLabel === false) {
    const applied = seccomp.kind === "unconfined" ? "unconfined" : `a profile with sha256 ${seccomp.sha256}`;
    const recorded = seccomp.label.kind === "unconfined" ? "unconfined" : `${seccomp.label.kind ?? "nothing"}${seccomp.label.sha256 ? ` (sha256 ${seccomp.label.sha256})` : ""}`;
    warnings.push(`seccomp: the engine applied ${applied}, but sandbox recorded ${recorded}.`);
  }
  const ptrace = ptracePosture(securityOpt, labels, seccomp);
  if (ptrace.onPurpose && ptrace.allowed === false) {
    warnings.push("ptrace: sandbox recorded --allow ptrace, but the engine's seccomp profile denies it.");
  } else if (!ptrace.onPurpose && ptrace.allowed === true && seccomp.kind === "default") {
    warnings.push("ptrace: the engine's seccomp profile allows it, but sandbox did not record --allow ptrace.");
  }
  const labelNetwork = labels[LABELS.network];
  const network = hc.NetworkMode ?? "default";
  // An egress run (--egress, public mode: every agent's default) asks for "egress" and gets a network of its own, `<name>-egress`.
  const asked = labelNetwork === "egress" && network.endsWith("-egress") ? network : labelNetwork;
  if (asked !== undefined && asked !== network) {
    warnings.push(`network: the engine reports ${network}, but sandbox asked for ${labelNetwork}.`);
  }

  const created = createdAt(labels, details.Created);
  return {
    id: details.Id,
    shortId: details.Id.slice(0, 12),
    name: details.Name.replace(/^\//, ""),
    image: details.Config.Image,
    command: parseCommandLabel(labels[LABELS.command]) ?? [details.Path, ...(details.Args ?? [])],
    engineCommand: [details.Path, ...(details.Args ?? [])],
    agent: labels[LABELS.agent] ?? null,
    sandboxVersion: labels[LABELS.version] ?? null,
    created: created === undefined ? null : new Date(created).toISOString(),
    state: {
      status: details.State.Status,
      running: details.State.Running,
      exitCode: details.State.ExitCode,
      oomKilled: details.State.OOMKilled,
      error: details.State.Error ? details.State.Error : null,
      startedAt,
      finishedAt,
      durationMs,
    },
    workspace,
    mounts: others,
    security: {
      capabilities: effectiveCapabilities(capDrop, capAdd, privileged),
      privileged,
      capDrop,
      capAdd,
      seccomp,
      allow: allowLabel(labels),
      ptrace,
      readOnlyRoot: hc.ReadonlyRootfs === true,
      noNewPrivileges: hasNoNewPrivileges(securityOpt),
      user: details.Config.User ?? "",
      memoryBytes: positive(hc.Memory),
      // -1 is "unlimited swap"; 0 means the engine's default (twice the memory).
      memorySwapBytes: typeof hc.MemorySwap === "number" && hc.MemorySwap !== 0 ? hc.MemorySwap : null,
      cpus,
      pidsLimit: positive(hc.PidsLimit),
      network,
    },
    envNames: (labels[LABELS.envNames] ?? "").split(",").filter((n) => n !== ""),
    warnings,
  };
}

/** A command as one would type it: words quoted only when they need it. */
export function displayCommand(words: readonly string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(" ");
}

function section(title: string, rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${title}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join("")}`;
}

function describeMount(m: MountPosture): string {
  const mode = m.readOnly ? "ro" : "rw";
  if (m.type === "tmpfs") return `${m.target} (${m.options ?? mode})`;
  return `${m.source ?? "?"} -> ${m.target} (${mode})`;
}

function describeSeccomp(s: SeccompPosture): string {
  const name = { default: "sandbox default profile", custom: "custom profile", unconfined: "unconfined (no filter)", unknown: "unknown" }[s.kind];
  const hash = s.sha256 ? `, sha256 ${s.sha256}` : "";
  const check =
    s.source === "label"
      ? s.path !== null
        ? ` (from sandbox's label: the engine names only the file ${s.path})`
        : " (from sandbox's label: the engine did not echo the profile)"
      : s.matchesLabel
        ? " (verified: matches sandbox's label)"
        : " (does NOT match sandbox's label)";
  return `${name}${hash}${check}`;
}

function describePtrace(p: PtracePosture, seccomp: SeccompKind): string {
  const from = p.source === "label" ? " (from sandbox's label)" : "";
  if (p.allowed === false) return `denied by seccomp${from}`;
  if (p.allowed === null) return `depends on the profile's conditions${from}`;
  if (p.onPurpose) return `allowed on purpose (--allow ptrace): processes of this container can trace each other, nothing outside it${from}`;
  return `${seccomp === "unconfined" ? "allowed (seccomp unconfined)" : "allowed by the seccomp profile"}${from}`;
}

function describeMemory(memory: number | null, swap: number | null): string {
  if (memory === null) return "unlimited";
  if (swap === memory) return `${formatSize(memory)} (no swap)`;
  if (swap === -1) return `${formatSize(memory)} (+ unlimited swap)`;
  if (swap !== null) return `${formatSize(memory)} (memory + swap ${formatSize(swap)})`;
  return formatSize(memory);
}

/** Text for `sandbox inspect`: pure, so tests can check it never carries an env value. */
export function renderPosture(p: ContainerPosture, now: number): string {
  const created = p.created === null ? "unknown" : `${p.created} (${formatAge(now - Date.parse(p.created))} ago)`;
  const exit = p.state.running ? "" : ` (exit code ${p.state.exitCode})`;
  const overview: Array<[string, string]> = [
    ["id", p.id],
    ["name", p.name],
    ["image", p.image],
    ["command", displayCommand(p.command)],
    ["agent", `${p.agent ?? "unknown"}${p.sandboxVersion ? ` (made by sandbox ${p.sandboxVersion})` : ""}`],
    ["created", created],
  ];
  if (displayCommand(p.engineCommand) !== displayCommand(p.command)) overview.splice(4, 0, ["runs as", displayCommand(p.engineCommand)]);
  const state: Array<[string, string]> = [
    ["status", `${p.state.status}${exit}`],
    ["oom killed", p.state.oomKilled ? "yes" : "no"],
    ["started", p.state.startedAt ?? "never"],
    ["finished", p.state.finishedAt ?? (p.state.running ? "still running" : "never")],
    ["duration", p.state.durationMs === null ? "-" : `${formatDuration(p.state.durationMs)}${p.state.running ? " so far" : ""}`],
  ];
  if (p.state.error) state.push(["error", p.state.error]);
  const mounts: Array<[string, string]> = [["workspace", p.workspace ? describeMount(p.workspace) : "none"]];
  for (const m of p.mounts) mounts.push([m.type, describeMount(m)]);
  const s = p.security;
  const caps = s.capabilities.length === 0 ? "none (all dropped)" : s.capabilities.join(", ");
  const security: Array<[string, string]> = [
    ["capabilities", s.privileged ? "ALL (privileged container)" : caps],
    ["seccomp", describeSeccomp(s.seccomp)],
    ["ptrace", describePtrace(s.ptrace, s.seccomp.kind)],
    ["read-only root", s.readOnlyRoot ? "yes" : "no"],
    ["no-new-privileges", s.noNewPrivileges ? "yes" : "no"],
    ["user", s.user === "" ? "the image's default" : s.user],
    ["memory", describeMemory(s.memoryBytes, s.memorySwapBytes)],
    ["cpus", s.cpus === null ? "unlimited" : String(s.cpus)],
    ["pids", s.pidsLimit === null ? "unlimited" : String(s.pidsLimit)],
    ["network", s.network],
    ["env (names)", p.envNames.length === 0 ? "none" : p.envNames.join(", ")],
  ];
  const parts = [section("Container", overview), section("State", state), section("Mounts", mounts), section("Security (as applied by the engine)", security)];
  if (p.warnings.length > 0) parts.push(`Warnings\n${p.warnings.map((w) => `  ${w}\n`).join("")}`);
  return parts.join("\n");
}
