/**
 * Writes down what Docker's default seccomp profile allows an unprivileged
 * container, for test/security/profile.test.ts to compare the built-in
 * profile with. The test must run on a fresh clone, and Docker's profile is
 * not part of this repository, so the test reads these facts instead:
 *
 *   bun scripts/docker-seccomp-facts.ts PATH/TO/moby-profiles/seccomp/default.json \
 *     > test/fixtures/docker-default-seccomp-facts.json
 *
 * Source of the recorded facts: Docker's default seccomp profile, file
 * `seccomp/default.json` of https://github.com/moby/profiles at commit
 * cd3bed8061c7b7378b61fc6827c7885779417a75 (the same content as tag
 * seccomp/v0.2.3), licensed Apache-2.0. When regenerating from another
 * version, update SOURCE below to match the file given.
 *
 * The facts, per architecture (amd64, arm64) and with no added
 * capabilities, resolved as Docker's setupSeccomp does (profiles/seccomp):
 * an entry counts when its `includes` hold (arches lists the GOARCH, every
 * listed cap is granted: none is) and none of its `excludes` does (GOARCH
 * listed, any listed cap granted). So an entry that needs a capability is
 * left out, and one that a capability would switch off is kept.
 *
 *   allow            syscall names allowed whatever their arguments, sorted
 *   allowIf          name -> alternatives; each alternative is one entry's
 *                    argument conditions (ANDed as written; runc ORs those
 *                    that test one argument twice, which the test models),
 *                    sorted and without duplicates
 *   allowFromKernel  minKernel -> names allowed only on that kernel or newer
 *   refuse           name -> the refusing rules (action, errnoRet) for it
 *   architecture, subArchitectures   the profile's archMap entry
 *
 * plus the profile's defaultAction and defaultErrnoRet. Anything the facts
 * cannot express (another action, a kernel-dependent refusal, an
 * `excludes.minKernel`, a conditional refusal) stops the script with an
 * error, so the test never compares against a silently simplified record.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseSeccompProfile, type SeccompArg, type SeccompSyscall } from "../src/security/seccomp.ts";

const SOURCE = {
  what: "Docker's default seccomp profile",
  repository: "https://github.com/moby/profiles",
  path: "seccomp/default.json",
  commit: "cd3bed8061c7b7378b61fc6827c7885779417a75",
  tag: "seccomp/v0.2.3",
  license: "Apache-2.0",
};

type GoArch = "amd64" | "arm64";
const ARCHES: Record<GoArch, string> = { amd64: "SCMP_ARCH_X86_64", arm64: "SCMP_ARCH_AARCH64" };

/** One argument condition. */
export interface Cond {
  index: number;
  op: string;
  value: number;
  valueTwo: number;
}

/** What Docker's default allows on one architecture, with no added capabilities. */
export interface ArchFacts {
  architecture: string;
  subArchitectures: string[];
  /** Allowed whatever the arguments. */
  allow: string[];
  /** Allowed when one of the alternatives holds (each one entry's conditions). */
  allowIf: Record<string, Cond[][]>;
  /** minKernel -> allowed only on that kernel or newer. */
  allowFromKernel: Record<string, string[]>;
  /** Refusing rules. */
  refuse: Record<string, { action: string; errnoRet?: number }[]>;
}

const PERMITTING = new Set(["SCMP_ACT_ALLOW"]);
const REFUSING = new Set(["SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"]);

function fail(message: string): never {
  process.stderr.write(`docker-seccomp-facts: ${message}\n`);
  process.exit(1);
}

/** Docker's setupSeccomp, for GOARCH `arch` and an empty capability set. */
function applies(entry: SeccompSyscall, arch: GoArch): boolean {
  const ex = entry.excludes;
  const inc = entry.includes;
  if (ex?.arches?.includes(arch)) return false;
  // Excluded when any listed cap is granted: none is, so the entry stays.
  if (inc?.arches && inc.arches.length > 0 && !inc.arches.includes(arch)) return false;
  if (inc?.caps && inc.caps.length > 0) return false;
  return true;
}

function normalCond(arg: SeccompArg): Cond {
  return { index: arg.index, op: arg.op, value: arg.value, valueTwo: arg.valueTwo ?? 0 };
}

function compareCond(a: Cond, b: Cond): number {
  return a.index - b.index || (a.op < b.op ? -1 : a.op > b.op ? 1 : 0) || a.value - b.value || a.valueTwo - b.valueTwo;
}

function compareConj(a: Cond[], b: Cond[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareCond(a[i] as Cond, b[i] as Cond);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function sortedRecord<T>(record: Map<string, T>): Record<string, T> {
  return Object.fromEntries([...record.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function factsFor(entries: readonly SeccompSyscall[], archMap: Map<string, string[]>, arch: GoArch): ArchFacts {
  const allow = new Set<string>();
  const allowIf = new Map<string, Cond[][]>();
  const fromKernel = new Map<string, Set<string>>();
  const refuse = new Map<string, { action: string; errnoRet?: number }[]>();
  entries.forEach((entry, i) => {
    if (!applies(entry, arch)) return;
    const where = `syscalls[${i}] (${arch})`;
    const names = entry.names && entry.names.length > 0 ? entry.names : entry.name ? [entry.name] : [];
    const conds = (entry.args ?? []).map(normalCond).sort(compareCond);
    if (entry.excludes?.minKernel !== undefined) fail(`${where}: excludes.minKernel is not modelled; extend the facts`);
    const minKernel = entry.includes?.minKernel;
    if (PERMITTING.has(entry.action)) {
      if (minKernel !== undefined) {
        if (conds.length > 0) fail(`${where}: a kernel-dependent conditional rule is not modelled; extend the facts`);
        const set = fromKernel.get(minKernel) ?? new Set<string>();
        for (const name of names) set.add(name);
        fromKernel.set(minKernel, set);
      } else if (conds.length === 0) {
        for (const name of names) allow.add(name);
      } else {
        for (const name of names) allowIf.set(name, [...(allowIf.get(name) ?? []), conds]);
      }
    } else if (REFUSING.has(entry.action)) {
      if (minKernel !== undefined || conds.length > 0) fail(`${where}: a conditional or kernel-dependent refusal is not modelled; extend the facts`);
      for (const name of names) {
        refuse.set(name, [...(refuse.get(name) ?? []), { action: entry.action, ...(entry.errnoRet !== undefined ? { errnoRet: entry.errnoRet } : {}) }]);
      }
    } else {
      fail(`${where}: action ${entry.action} is not modelled; extend the facts`);
    }
  });
  // An unconditional rule covers every alternative of the same name.
  for (const name of allow) allowIf.delete(name);
  for (const [name, alternatives] of allowIf) {
    const unique = new Map(alternatives.map((conj) => [JSON.stringify(conj), conj]));
    allowIf.set(name, [...unique.values()].sort(compareConj));
  }
  const architecture = ARCHES[arch];
  const subArchitectures = archMap.get(architecture);
  if (subArchitectures === undefined) fail(`archMap has no ${architecture}`);
  return {
    architecture,
    subArchitectures: [...subArchitectures].sort(),
    allow: [...allow].sort(),
    allowIf: sortedRecord(allowIf),
    allowFromKernel: sortedRecord(new Map([...fromKernel].map(([k, names]) => [k, [...names].sort()]))),
    refuse: sortedRecord(refuse),
  };
}

const file = process.argv[2];
if (file === undefined || process.argv.length > 3) fail("usage: bun scripts/docker-seccomp-facts.ts PATH/TO/seccomp/default.json > test/fixtures/docker-default-seccomp-facts.json");
const text = readFileSync(file, "utf8");
// The project's own parser must accept Docker's profile as it is.
const profile = parseSeccompProfile(text, file);
if (profile.architectures !== undefined) fail("expected an archMap, not architectures");
const archMap = new Map((profile.archMap ?? []).map((a) => [a.architecture, a.subArchitectures ?? []]));
const entries = profile.syscalls ?? [];

const facts = {
  source: {
    ...SOURCE,
    sha256: createHash("sha256").update(text).digest("hex"),
    generator: "scripts/docker-seccomp-facts.ts",
    scope: "amd64 and arm64, no added capabilities: entries that need a capability are left out, entries a capability would switch off are kept",
  },
  defaultAction: profile.defaultAction,
  defaultErrnoRet: profile.defaultErrnoRet,
  syscallEntries: entries.length,
  arches: Object.fromEntries((Object.keys(ARCHES) as GoArch[]).map((arch) => [arch, factsFor(entries, archMap, arch)])),
};
process.stdout.write(`${JSON.stringify(facts, null, 2)}\n`);
