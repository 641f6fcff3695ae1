/**
 * Seccomp profiles in Docker's JSON format: our built-in default, and
 * validation of profiles the user points us at.
 *
 * The default lives in seccomp-profile.json so it stays readable and
 * reviewable; the import below makes `bun build --compile` embed it, so the
 * binary never depends on a file next to it. test/security/profile.test.ts
 * proves it allows nothing Docker's default would deny to a container without
 * added capabilities.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as v from "valibot";
import { SandboxError, UsageError } from "../core/errors.ts";
import embeddedProfile from "./seccomp-profile.json" with { type: "json" };

/** Actions the engine's runtime (runc via libseccomp) understands. */
export const SECCOMP_ACTIONS = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
] as const;

export const SECCOMP_OPERATORS = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
] as const;

/**
 * Syscalls the default profile never allows, as the "Hardened by default"
 * issue requires. For a container without added capabilities Docker's own
 * default already denies most of them; the ones it would allow are ptrace and
 * process_vm_readv/process_vm_writev (Linux >= 4.8). Namespaces by way of
 * clone are refused by an argument filter instead (clone itself must stay),
 * and clone3 answers ENOSYS rather than EPERM so libc falls back to clone.
 */
export const EXTRA_DENIALS: readonly string[] = Object.freeze([
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
  "userfaultfd",
  "bpf",
  "perf_event_open",
  "keyctl",
  "add_key",
  "request_key",
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "unshare",
  "setns",
  "clone3",
  "mount",
  "umount",
  "umount2",
  "pivot_root",
  "move_mount",
  "open_tree",
  "mount_setattr",
  "fsopen",
  "fsconfig",
  "fsmount",
  "fspick",
  "init_module",
  "finit_module",
  "delete_module",
  "kexec_load",
  "kexec_file_load",
  "open_by_handle_at",
  "chroot",
]);

// JSON numbers beyond 2^53 lose digits in JavaScript, and we re-serialise the
// profile before sending it: refuse them rather than send a different value.
const Uint = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(0),
  v.maxValue(Number.MAX_SAFE_INTEGER, "must be at most 2^53-1 (larger numbers cannot be forwarded exactly)"),
);

const ArgSchema = v.looseObject({
  index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5, "must be an argument index from 0 to 5")),
  value: Uint,
  valueTwo: v.optional(Uint),
  op: v.picklist(SECCOMP_OPERATORS),
});

const FilterSchema = v.looseObject({
  caps: v.optional(v.array(v.string())),
  arches: v.optional(v.array(v.string())),
  minKernel: v.optional(v.string()),
});

const SyscallSchema = v.pipe(
  v.looseObject({
    name: v.optional(v.string()),
    names: v.optional(v.array(v.string())),
    action: v.picklist(SECCOMP_ACTIONS),
    errnoRet: v.optional(Uint),
    args: v.nullish(v.array(ArgSchema)),
    comment: v.optional(v.string()),
    includes: v.optional(FilterSchema),
    excludes: v.optional(FilterSchema),
  }),
  // Docker refuses both at once; neither would be a rule that matches nothing.
  v.check(
    (call) => (call.name !== undefined) !== (call.names !== undefined && call.names.length > 0),
    'needs either "names" (a non-empty list) or the legacy "name", not both',
  ),
);

const ArchitectureSchema = v.looseObject({
  architecture: v.string(),
  subArchitectures: v.nullish(v.array(v.string())),
});

const ProfileSchema = v.pipe(
  v.looseObject({
    defaultAction: v.picklist(SECCOMP_ACTIONS),
    defaultErrnoRet: v.optional(Uint),
    architectures: v.optional(v.array(v.string())),
    archMap: v.optional(v.array(ArchitectureSchema)),
    syscalls: v.optional(v.array(SyscallSchema)),
  }),
  v.check(
    (profile) => profile.architectures === undefined || profile.archMap === undefined,
    'has both "architectures" and "archMap"; Docker accepts only one of them',
  ),
);

export type SeccompProfile = v.InferOutput<typeof ProfileSchema>;
export type SeccompSyscall = v.InferOutput<typeof SyscallSchema>;
export type SeccompArg = v.InferOutput<typeof ArgSchema>;

const FORMAT_HINT =
  "Use Docker's seccomp JSON format, e.g. " +
  '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}; ' +
  "see https://docs.docker.com/engine/security/seccomp/";

// How many schema problems to list before "and N more".
const MAX_REPORTED_ISSUES = 3;

/** `syscalls[3].args[0].op` rather than valibot's dotted path. */
function issuePath(issue: v.BaseIssue<unknown>): string {
  let text = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    text += typeof key === "number" ? `[${key}]` : text === "" ? String(key) : `.${String(key)}`;
  }
  return text === "" ? "profile" : text;
}

function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const shown = issues.slice(0, MAX_REPORTED_ISSUES).map((issue) => `${issuePath(issue)}: ${issue.message}`);
  const more = issues.length - shown.length;
  return shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
}

/**
 * Checks that `text` is a seccomp profile Docker would accept. `source` names
 * where it came from (a file path) for the error message.
 */
export function parseSeccompProfile(text: string, source: string): SeccompProfile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(`seccomp profile ${source} is not valid JSON: ${reason}`, { hint: FORMAT_HINT });
  }
  const result = v.safeParse(ProfileSchema, data);
  if (!result.success) {
    throw new UsageError(`seccomp profile ${source} is invalid: ${describeIssues(result.issues)}`, {
      hint: FORMAT_HINT,
    });
  }
  return result.output;
}

/** Reads and validates a profile file named on the command line or in config. */
export function loadSeccompProfileFile(path: string): SeccompProfile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = code === "ENOENT" ? "does not exist" : `cannot be read (${error instanceof Error ? error.message : String(error)})`;
    throw new UsageError(`seccomp profile ${path} ${reason}`, {
      hint: "Pass the path of a JSON seccomp profile, or leave the option out to use sandbox's built-in profile.",
    });
  }
  return parseSeccompProfile(text, path);
}

let builtIn: SeccompProfile | undefined;

/** The built-in profile; a fresh copy each call so callers may not alter the shared one. */
export function defaultSeccompProfile(): SeccompProfile {
  if (builtIn === undefined) {
    const result = v.safeParse(ProfileSchema, embeddedProfile);
    if (!result.success) {
      // Only a broken build gets here: the test suite validates the file.
      throw new SandboxError(`built-in seccomp profile is invalid: ${describeIssues(result.issues)}`);
    }
    builtIn = result.output;
  }
  return structuredClone(builtIn);
}

/** Object keys in code-point order at every level; arrays keep their order (rule order is the profile's). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== "object") return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = canonical((value as Record<string, unknown>)[key]);
  return sorted;
}

/**
 * The exact text sent to the engine as `seccomp=<text>` in
 * HostConfig.SecurityOpt: compact JSON with sorted keys, so the same profile
 * always yields the same text (and hash) however its file was laid out.
 */
export function serializeProfile(profile: SeccompProfile): string {
  return JSON.stringify(canonical(profile));
}

/** Identifies a profile by the text the engine receives (sha256, hex). */
export function profileHash(profile: SeccompProfile): string {
  return hashText(serializeProfile(profile));
}

function hashText(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

let builtInText: { json: string; hash: string } | undefined;

/**
 * The built-in profile as sent to the engine, and its hash: what every run
 * needs, computed once from the embedded file without validating, copying
 * and canonicalising the whole profile again (the test suite validates the
 * file, and that its canonical text is this one).
 */
export function defaultSeccompText(): { json: string; hash: string } {
  if (builtInText === undefined) {
    const json = JSON.stringify(canonical(embeddedProfile));
    builtInText = { json, hash: hashText(json) };
  }
  return builtInText;
}

/**
 * What each `--allow` escape (`security.allow`) lets through the profile.
 * ptrace: the debugging escape (strace, gdb, delve, py-spy). Docker's default
 * profile allows these three unconditionally on Linux >= 4.8 (where seccomp
 * re-checks a syscall a tracer changed, so tracing cannot bypass the filter).
 * No capability comes with it: tracing a process of the same user in the same
 * PID namespace needs none, and processes outside the container are not in
 * its PID namespace, so they cannot even be named.
 */
export const SECCOMP_ESCAPES = Object.freeze({
  ptrace: Object.freeze(["ptrace", "process_vm_readv", "process_vm_writev"]),
}) satisfies Readonly<Record<string, readonly string[]>>;

export type SeccompEscape = keyof typeof SECCOMP_ESCAPES;

export function isSeccompEscape(name: string): name is SeccompEscape {
  return Object.hasOwn(SECCOMP_ESCAPES, name);
}

/**
 * `profile` with the syscalls of `escapes` allowed whatever their arguments:
 * every rule naming them is dropped (so no refusing or narrower rule competes
 * with the new one; runc would fail on two rules with different actions) and
 * one ALLOW rule is appended. A profile that already allows everything by
 * default gets no rule (libseccomp refuses a rule with the default's action).
 * Pure: returns a new profile; with no escapes, an equal copy.
 */
export function withEscapes(profile: SeccompProfile, escapes: readonly string[]): SeccompProfile {
  const names: string[] = [];
  for (const escape of escapes) {
    if (!isSeccompEscape(escape)) throw new UsageError(`"${escape}" is not something sandbox can allow; the one escape is ptrace.`);
    for (const name of SECCOMP_ESCAPES[escape]) if (!names.includes(name)) names.push(name);
  }
  const copy = structuredClone(profile);
  if (names.length === 0) return copy;
  const freed = new Set(names);
  const syscalls: SeccompSyscall[] = [];
  for (const entry of copy.syscalls ?? []) {
    if (entry.name !== undefined) {
      if (!freed.has(entry.name)) syscalls.push(entry);
      continue;
    }
    const kept = (entry.names ?? []).filter((name) => !freed.has(name));
    if (kept.length > 0) syscalls.push({ ...entry, names: kept });
  }
  if (copy.defaultAction !== "SCMP_ACT_ALLOW") {
    syscalls.push({
      comment: `--allow ${[...new Set(escapes)].sort().join(",")}: tracing processes of the same container (Docker's default allows these on Linux >= 4.8)`,
      names,
      action: "SCMP_ACT_ALLOW",
    });
  }
  return { ...copy, syscalls };
}

/** The text sent to the engine and its hash, for a profile built here (see defaultSeccompText for the built-in one). */
export function profileText(profile: SeccompProfile): { json: string; hash: string } {
  const json = serializeProfile(profile);
  return { json, hash: hashText(json) };
}
