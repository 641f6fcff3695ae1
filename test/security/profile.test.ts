/**
 * Proves the built-in seccomp profile (src/security/seccomp-profile.json)
 * allows nothing that Docker's default profile would deny to an unprivileged
 * container with no added capabilities, and that it denies what the
 * "Hardened by default" issue asks for. No engine needed.
 *
 * How a profile becomes a filter is modelled on the two programs that do it:
 *
 * - Docker (profiles/seccomp, setupSeccomp) keeps an entry only if its
 *   `includes` all hold (arches contains the daemon's GOARCH, every listed cap
 *   is granted, kernel >= minKernel) and none of its `excludes` does (GOARCH
 *   listed, any listed cap granted, kernel >= minKernel).
 * - runc (libcontainer/seccomp) turns an entry into one libseccomp rule whose
 *   argument conditions are ANDed, EXCEPT when two conditions test the same
 *   argument index: then it adds one rule per condition, so they are ORed.
 *   Checked against Docker 20.10 / runc 1.1.5: socket with
 *   `arg0 != 40` and `arg0 != 38` in one entry let AF_VSOCK and AF_ALG
 *   through. That is why our socket filter uses Docker's three ranges.
 *
 * The kernel version is unknown here, so entries that depend on it are
 * resolved against us: counted as present in our profile, absent in Docker's.
 *
 * Docker's side comes from test/fixtures/docker-default-seccomp-facts.json,
 * not from Docker's profile itself (which is not part of this repository):
 * what moby/profiles' seccomp/default.json at commit
 * cd3bed8061c7b7378b61fc6827c7885779417a75 (tag seccomp/v0.2.3, Apache-2.0)
 * allows on amd64 and arm64 with no added capabilities, written down by
 * scripts/docker-seccomp-facts.ts. The test rebuilds a profile in Docker's
 * format from those facts, so the same parser and model judge both sides.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadSeccomp } from "../../src/cli/prepare-run.ts";
import { UsageError } from "../../src/core/errors.ts";
import {
  EXTRA_DENIALS,
  defaultSeccompProfile,
  defaultSeccompText,
  loadSeccompProfileFile,
  parseSeccompProfile,
  profileHash,
  profileText,
  SECCOMP_ESCAPES,
  serializeProfile,
  withEscapes,
  type SeccompProfile,
  type SeccompSyscall,
} from "../../src/security/seccomp.ts";
// The facts' shapes are the generator's (types only: importing them runs nothing).
import type { ArchFacts, Cond as FactCond } from "../../scripts/docker-seccomp-facts.ts";

const FACTS_PATH = path.resolve(import.meta.dir, "../fixtures/docker-default-seccomp-facts.json");
const OURS_PATH = path.resolve(import.meta.dir, "../../src/security/seccomp-profile.json");

interface DockerFacts {
  source: { repository: string; path: string; commit: string; license: string };
  defaultAction: string;
  defaultErrnoRet?: number;
  syscallEntries: number;
  arches: Record<string, ArchFacts>;
}

let factsCache: DockerFacts | undefined;

/** The recorded facts; their absence fails the test instead of skipping it. */
function dockerFacts(): DockerFacts {
  if (factsCache === undefined) {
    if (!existsSync(FACTS_PATH)) {
      throw new Error(
        `the facts about Docker's default seccomp profile are missing: expected ${FACTS_PATH}. ` +
          "Regenerate them with scripts/docker-seccomp-facts.ts.",
      );
    }
    factsCache = JSON.parse(readFileSync(FACTS_PATH, "utf8")) as DockerFacts;
  }
  return factsCache;
}

/**
 * Docker's default profile as far as the facts reach, in Docker's format:
 * per architecture, one entry per fact, limited to that architecture with
 * `includes.arches` (and to newer kernels with `includes.minKernel`), as
 * Docker's own profile limits them.
 */
function rebuiltReferenceText(facts: DockerFacts): string {
  const syscalls: unknown[] = [];
  for (const arch of ARCHES) {
    const f = facts.arches[arch];
    if (f === undefined) throw new Error(`${FACTS_PATH} has no facts for ${arch}`);
    const arches = [arch];
    syscalls.push({ names: f.allow, action: "SCMP_ACT_ALLOW", includes: { arches } });
    for (const [name, alternatives] of Object.entries(f.allowIf)) {
      for (const args of alternatives) syscalls.push({ names: [name], action: "SCMP_ACT_ALLOW", args, includes: { arches } });
    }
    for (const [minKernel, names] of Object.entries(f.allowFromKernel)) {
      syscalls.push({ names, action: "SCMP_ACT_ALLOW", includes: { arches, minKernel } });
    }
    for (const [name, rules] of Object.entries(f.refuse)) {
      for (const rule of rules) syscalls.push({ names: [name], ...rule, includes: { arches } });
    }
  }
  const archMap = ARCHES.map((arch) => ({
    architecture: facts.arches[arch]?.architecture,
    subArchitectures: facts.arches[arch]?.subArchitectures,
  }));
  return JSON.stringify({ defaultAction: facts.defaultAction, defaultErrnoRet: facts.defaultErrnoRet, archMap, syscalls });
}

let referenceCache: SeccompProfile | undefined;

/** Docker's default profile, rebuilt from the facts and read by our parser. */
function reference(): SeccompProfile {
  if (referenceCache === undefined) {
    referenceCache = parseSeccompProfile(rebuiltReferenceText(dockerFacts()), FACTS_PATH);
  }
  return referenceCache;
}

// ---------------------------------------------------------------------------
// Model: profile -> rules per syscall
// ---------------------------------------------------------------------------

type GoArch = "amd64" | "arm64";
const ARCHES: readonly GoArch[] = ["amd64", "arm64"];
const SECCOMP_ARCH: Record<GoArch, string> = { amd64: "SCMP_ARCH_X86_64", arm64: "SCMP_ARCH_AARCH64" };

/** "upper": count uncertain entries in (what ours might allow); "lower": leave them out (what Docker surely allows). */
type Bound = "upper" | "lower";

interface Cond {
  readonly index: number;
  readonly op: string;
  readonly value: bigint;
  readonly valueTwo: bigint;
}

/** One libseccomp rule: its conditions are ANDed; [] matches every call. */
type Conjunction = readonly Cond[];

interface Rule {
  readonly name: string;
  readonly action: string;
  readonly errnoRet: number | undefined;
  readonly conds: Conjunction;
}

const NO_CAPS: readonly string[] = [];

/** true, false, or "unknown" when it depends on the kernel version. */
function entryApplies(entry: SeccompSyscall, arch: GoArch, caps: readonly string[]): boolean | "unknown" {
  const ex = entry.excludes;
  if (ex?.arches?.includes(arch)) return false;
  if (ex?.caps?.some((cap) => caps.includes(cap))) return false;
  const inc = entry.includes;
  if (inc?.arches && inc.arches.length > 0 && !inc.arches.includes(arch)) return false;
  if (inc?.caps && inc.caps.length > 0 && !inc.caps.every((cap) => caps.includes(cap))) return false;
  if (ex?.minKernel !== undefined || inc?.minKernel !== undefined) return "unknown";
  return true;
}

function toConds(entry: SeccompSyscall): Cond[] {
  return (entry.args ?? []).map((arg) => ({
    index: arg.index,
    op: arg.op,
    value: BigInt(arg.value),
    valueTwo: BigInt(arg.valueTwo ?? 0),
  }));
}

/** runc: conditions on distinct indexes form one rule; a repeated index splits them into one rule each. */
function runcConjunctions(conds: readonly Cond[]): Conjunction[] {
  const indexes = conds.map((c) => c.index);
  const repeated = new Set(indexes).size !== indexes.length;
  return repeated ? conds.map((c) => [c]) : [conds];
}

function effectiveRules(profile: SeccompProfile, arch: GoArch, caps: readonly string[], bound: Bound): Rule[] {
  const rules: Rule[] = [];
  for (const entry of profile.syscalls ?? []) {
    const applies = entryApplies(entry, arch, caps);
    if (applies === false || (applies === "unknown" && bound === "lower")) continue;
    const names = entry.names && entry.names.length > 0 ? entry.names : entry.name ? [entry.name] : [];
    for (const name of names) {
      for (const conds of runcConjunctions(toConds(entry))) {
        rules.push({ name, action: entry.action, errnoRet: entry.errnoRet, conds });
      }
    }
  }
  return rules;
}

// ALLOW and LOG let the call through; TRACE and NOTIFY may, depending on a
// tracer or supervisor. Ours only ever uses ALLOW (asserted below), so the
// wide set only matters for the upper bound.
const PERMITTING_UPPER = new Set(["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_NOTIFY"]);
const PERMITTING_LOWER = new Set(["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]);

/**
 * Syscall -> alternatives (ORed conjunctions) under which it is allowed.
 * Lower bound: a syscall that also has a refusing rule that might apply is
 * dropped entirely, because which of two actions wins would then depend on
 * libseccomp's precedence and we do not model it.
 */
function allowedRules(profile: SeccompProfile, arch: GoArch, bound: Bound): Map<string, Conjunction[]> {
  const permitting = bound === "upper" ? PERMITTING_UPPER : PERMITTING_LOWER;
  const allowed = new Map<string, Conjunction[]>();
  const refused = new Set<string>();
  // Everything that might apply decides whether a refusal is possible.
  for (const rule of effectiveRules(profile, arch, NO_CAPS, "upper")) {
    if (!PERMITTING_UPPER.has(rule.action)) refused.add(rule.name);
  }
  for (const rule of effectiveRules(profile, arch, NO_CAPS, bound)) {
    if (!permitting.has(rule.action)) continue;
    if (bound === "lower" && refused.has(rule.name)) continue;
    allowed.set(rule.name, [...(allowed.get(rule.name) ?? []), rule.conds]);
  }
  return allowed;
}

// ---------------------------------------------------------------------------
// Conditions as sets of 64-bit argument values
// ---------------------------------------------------------------------------

// libseccomp compares the full 64-bit argument, unsigned. Both profiles are
// judged by the same model, and every value in ours is below 2^32 (asserted),
// so the 32-bit compat architectures see the same comparisons.
const U64_MAX = (1n << 64n) - 1n;

/** Sorted, disjoint, inclusive [lo, hi] ranges. */
type Ranges = readonly (readonly [bigint, bigint])[];
const EVERYTHING: Ranges = [[0n, U64_MAX]];

/** Range form of a comparison, or undefined for MASKED_EQ (not a few ranges). */
function condRanges(c: Cond): Ranges | undefined {
  const v = c.value;
  switch (c.op) {
    case "SCMP_CMP_EQ":
      return [[v, v]];
    case "SCMP_CMP_NE":
      return [
        ...(v > 0n ? [[0n, v - 1n] as const] : []),
        ...(v < U64_MAX ? [[v + 1n, U64_MAX] as const] : []),
      ];
    case "SCMP_CMP_LT":
      return v > 0n ? [[0n, v - 1n]] : [];
    case "SCMP_CMP_LE":
      return [[0n, v]];
    case "SCMP_CMP_GT":
      return v < U64_MAX ? [[v + 1n, U64_MAX]] : [];
    case "SCMP_CMP_GE":
      return [[v, U64_MAX]];
    default:
      return undefined;
  }
}

function intersect(a: Ranges, b: Ranges): Ranges {
  const out: [bigint, bigint][] = [];
  for (const [alo, ahi] of a) {
    for (const [blo, bhi] of b) {
      const lo = alo > blo ? alo : blo;
      const hi = ahi < bhi ? ahi : bhi;
      if (lo <= hi) out.push([lo, hi]);
    }
  }
  return normalise(out);
}

function normalise(ranges: readonly (readonly [bigint, bigint])[]): Ranges {
  const sorted = [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

function isSubset(inner: Ranges, outer: Ranges): boolean {
  return inner.every(([lo, hi]) => outer.some(([olo, ohi]) => olo <= lo && hi <= ohi));
}

function size(ranges: Ranges): bigint {
  return ranges.reduce((n, [lo, hi]) => n + (hi - lo + 1n), 0n);
}

/** Values a conjunction admits for one argument, from its range-type conditions only (a superset). */
function rangePart(conj: Conjunction, index: number): Ranges {
  let acc = EVERYTHING;
  for (const c of conj) {
    const r = c.index === index ? condRanges(c) : undefined;
    if (r !== undefined) acc = intersect(acc, r);
  }
  return acc;
}

const ENUMERATION_LIMIT = 4096n;

/**
 * Sound implication test: true only if every call matching `conj` also meets
 * `c`. It may say false for a true implication (then the subset test fails
 * loudly and the model must learn the new shape), never the reverse.
 */
function implies(conj: Conjunction, c: Cond): boolean {
  const part = rangePart(conj, c.index);
  const ranges = condRanges(c);
  if (ranges !== undefined) return isSubset(part, ranges);
  // MASKED_EQ: (arg & value) == valueTwo.
  const mask = c.value;
  const want = c.valueTwo;
  if (mask === 0n) return want === 0n;
  // (x & m') == v' with m a subset of m' gives (x & m) == (v' & m).
  const viaMask = conj.some(
    (o) => o.index === c.index && o.op === "SCMP_CMP_MASKED_EQ" && (mask & ~o.value) === 0n && (o.valueTwo & mask) === want,
  );
  if (viaMask) return true;
  if (size(part) > ENUMERATION_LIMIT) return false;
  for (const [lo, hi] of part) {
    for (let x = lo; x <= hi; x++) if ((x & mask) !== want) return false;
  }
  return true;
}

/** A conjunction whose range-type conditions exclude every value matches no call at all. */
function unsatisfiable(conj: Conjunction): boolean {
  return conj.some((c) => rangePart(conj, c.index).length === 0);
}

/**
 * Is every call `ours` admits also admitted by one of Docker's alternatives?
 * 1. One Docker alternative whose every condition `ours` implies (an
 *    unconditional Docker rule covers anything).
 * 2. Otherwise, when all conditions on both sides are ranges on one shared
 *    argument, compare the value sets exactly (union of Docker's ranges).
 * Anything else is reported as not proven.
 */
function covered(ours: Conjunction, docker: readonly Conjunction[]): boolean {
  if (unsatisfiable(ours)) return true;
  if (docker.some((alt) => alt.every((c) => implies(ours, c)))) return true;
  const all = [...ours, ...docker.flat()];
  const indexes = new Set(all.map((c) => c.index));
  const [only] = indexes;
  if (indexes.size !== 1 || only === undefined || all.some((c) => condRanges(c) === undefined)) return false;
  const union = normalise(docker.flatMap((alt) => rangePart(alt, only)));
  return isSubset(rangePart(ours, only), union);
}

function describeConj(conj: Conjunction): string {
  if (conj.length === 0) return "always";
  return conj
    .map((c) => `arg${c.index} ${c.op.replace("SCMP_CMP_", "")} ${c.value}${c.op === "SCMP_CMP_MASKED_EQ" ? `/${c.valueTwo}` : ""}`)
    .join(" && ");
}

/** Does any alternative admit a call with these argument values? */
function permits(alternatives: readonly Conjunction[] | undefined, args: readonly bigint[]): boolean {
  return (alternatives ?? []).some((conj) =>
    conj.every((c) => {
      const x = args[c.index] ?? 0n;
      const ranges = condRanges(c);
      if (ranges !== undefined) return ranges.some(([lo, hi]) => lo <= x && x <= hi);
      return (x & c.value) === c.valueTwo;
    }),
  );
}

// ---------------------------------------------------------------------------
// The subset test
// ---------------------------------------------------------------------------

const ours = defaultSeccompProfile();

describe("built-in seccomp profile vs Docker's default (no added capabilities)", () => {
  test("Docker's reference profile is present and valid", () => {
    expect(dockerFacts().source).toMatchObject({
      repository: "https://github.com/moby/profiles",
      path: "seccomp/default.json",
      commit: "cd3bed8061c7b7378b61fc6827c7885779417a75",
      license: "Apache-2.0",
    });
    expect(Object.keys(dockerFacts().arches).sort()).toEqual([...ARCHES].sort());
    expect(reference().defaultAction).toBe("SCMP_ACT_ERRNO");
  });

  test("the embedded profile is exactly src/security/seccomp-profile.json", () => {
    expect(ours).toEqual(JSON.parse(readFileSync(OURS_PATH, "utf8")));
  });

  test("default action is EPERM", () => {
    expect(ours.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(ours.defaultErrnoRet).toBe(1);
  });

  test("only ALLOW and ERRNO actions, no capability or kernel conditions", () => {
    for (const entry of ours.syscalls ?? []) {
      expect(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"]).toContain(entry.action);
      expect(entry.includes?.caps ?? []).toEqual([]);
      expect(entry.excludes?.caps ?? []).toEqual([]);
      expect(entry.includes?.minKernel).toBeUndefined();
      expect(entry.excludes?.minKernel).toBeUndefined();
    }
  });

  test("no entry tests one argument twice (runc would OR those conditions)", () => {
    for (const entry of ours.syscalls ?? []) {
      const indexes = (entry.args ?? []).map((a) => a.index);
      expect({ names: entry.names, indexes: [...new Set(indexes)] }).toEqual({ names: entry.names, indexes });
    }
  });

  test("every argument value fits 32 bits", () => {
    for (const entry of ours.syscalls ?? []) {
      for (const arg of entry.args ?? []) {
        expect(arg.value).toBeLessThan(2 ** 32);
        expect(arg.valueTwo ?? 0).toBeLessThan(2 ** 32);
      }
    }
  });

  test("architectures: amd64 and arm64, compat ABIs only where Docker has them", () => {
    const docker = new Map((reference().archMap ?? []).map((a) => [a.architecture, a.subArchitectures ?? []]));
    const mine = ours.archMap ?? [];
    expect(ours.architectures).toBeUndefined();
    expect(mine.map((a) => a.architecture).sort()).toEqual(Object.values(SECCOMP_ARCH).sort());
    for (const entry of mine) {
      const allowedSubs = docker.get(entry.architecture) ?? [];
      for (const sub of entry.subArchitectures ?? []) expect(allowedSubs).toContain(sub);
    }
  });

  for (const arch of ARCHES) {
    describe(arch, () => {
      const mine = allowedRules(ours, arch, "upper");

      test("allows an ordinary program's syscalls (guards against a vacuous comparison)", () => {
        expect(mine.size).toBeGreaterThan(300);
        for (const name of ["read", "write", "openat", "execve", "mmap", "futex", "clone", "socket", "wait4"]) {
          expect(mine.has(name)).toBe(true);
        }
        expect(mine.has("arch_prctl")).toBe(arch === "amd64");
        expect(mine.has("set_tls")).toBe(arch === "arm64");
      });

      test("no syscall has both an allowing and a refusing rule", () => {
        const refusing = effectiveRules(ours, arch, NO_CAPS, "upper")
          .filter((r) => r.action !== "SCMP_ACT_ALLOW")
          .map((r) => r.name);
        expect(refusing.filter((name) => mine.has(name))).toEqual([]);
      });

      test("every rule ours allows, Docker's allows with the same or looser conditions", () => {
        const docker = allowedRules(reference(), arch, "lower");
        const violations: string[] = [];
        for (const [name, alternatives] of mine) {
          for (const conj of alternatives) {
            const theirs = docker.get(name) ?? [];
            if (!covered(conj, theirs)) {
              const dockerText = theirs.length === 0 ? "denied" : theirs.map(describeConj).join(" || ");
              violations.push(`${name}: ours allows when ${describeConj(conj)}; Docker: ${dockerText}`);
            }
          }
        }
        expect(violations).toEqual([]);
      });

      test("differs from Docker only where intended", () => {
        // Upper bound of Docker: includes ptrace & co, allowed on Linux >= 4.8.
        const docker = allowedRules(reference(), arch, "upper");
        const dropped = [...docker.keys()].filter((name) => !mine.has(name)).sort();
        expect(dropped).toEqual(["process_vm_readv", "process_vm_writev", "ptrace"]);
        const narrowed = [...mine.keys()]
          .filter((name) => !mine.get(name)?.some((conj) => conj.length === 0))
          .filter((name) => docker.get(name)?.some((conj) => conj.length === 0))
          .sort();
        expect(narrowed).toEqual(["mknod", "mknodat"]);
      });

      test.each([...EXTRA_DENIALS])("denies %s", (name) => {
        expect(mine.get(name)).toBeUndefined();
      });

      test("clone: only without namespace flags", () => {
        const CLONE_NEW = {
          NEWNS: 0x00020000n,
          NEWCGROUP: 0x02000000n,
          NEWUTS: 0x04000000n,
          NEWIPC: 0x08000000n,
          NEWUSER: 0x10000000n,
          NEWPID: 0x20000000n,
          NEWNET: 0x40000000n,
        };
        const mask = Object.values(CLONE_NEW).reduce((a, b) => a | b, 0n);
        expect(mine.get("clone")).toEqual([[{ index: 0, op: "SCMP_CMP_MASKED_EQ", value: mask, valueTwo: 0n }]]);
        const SIGCHLD = 17n;
        const PTHREAD_FLAGS = 0x3d0f00n; // glibc pthread_create
        expect(permits(mine.get("clone"), [SIGCHLD])).toBe(true);
        expect(permits(mine.get("clone"), [PTHREAD_FLAGS])).toBe(true);
        for (const flag of Object.values(CLONE_NEW)) {
          expect(permits(mine.get("clone"), [flag | SIGCHLD])).toBe(false);
        }
      });

      test("clone3: ENOSYS, so libc falls back to clone", () => {
        const rules = effectiveRules(ours, arch, NO_CAPS, "upper").filter((r) => r.name === "clone3");
        expect(rules.map((r) => [r.action, r.errnoRet, r.conds.length])).toEqual([["SCMP_ACT_ERRNO", 38, 0]]);
      });

      test("personality: only Docker's five values", () => {
        const values = (mine.get("personality") ?? []).map((conj) => conj.map((c) => [c.index, c.op, c.value]));
        expect(values).toEqual([0n, 8n, 0x20000n, 0x20008n, 0xffffffffn].map((v) => [[0, "SCMP_CMP_EQ", v]]));
        const READ_IMPLIES_EXEC = 0x0400000n;
        const ADDR_NO_RANDOMIZE = 0x0040000n;
        expect(permits(mine.get("personality"), [READ_IMPLIES_EXEC])).toBe(false);
        expect(permits(mine.get("personality"), [ADDR_NO_RANDOMIZE])).toBe(false);
      });

      test("socket: every family but AF_ALG (38) and AF_VSOCK (40)", () => {
        const socket = mine.get("socket");
        for (const family of [1n, 2n, 10n, 16n, 17n, 37n, 39n, 41n, 45n]) expect(permits(socket, [family])).toBe(true);
        expect(permits(socket, [38n])).toBe(false);
        expect(permits(socket, [40n])).toBe(false);
      });

      test("mknod/mknodat: files, FIFOs and sockets, never device nodes", () => {
        const S_IFMT_TYPES = { REG: 0o100000n, FIFO: 0o010000n, SOCK: 0o140000n, CHR: 0o020000n, BLK: 0o060000n };
        for (const [name, modeIndex] of [["mknod", 1], ["mknodat", 2]] as const) {
          const at = (mode: bigint): bigint[] => Object.assign([0n, 0n, 0n, 0n], { [modeIndex]: mode | 0o644n });
          expect(permits(mine.get(name), at(0n))).toBe(true);
          expect(permits(mine.get(name), at(S_IFMT_TYPES.REG))).toBe(true);
          expect(permits(mine.get(name), at(S_IFMT_TYPES.FIFO))).toBe(true);
          expect(permits(mine.get(name), at(S_IFMT_TYPES.SOCK))).toBe(true);
          expect(permits(mine.get(name), at(S_IFMT_TYPES.CHR))).toBe(false);
          expect(permits(mine.get(name), at(S_IFMT_TYPES.BLK))).toBe(false);
        }
      });
    });
  }
});

describe("--allow ptrace: the built-in profile with the debugging escape", () => {
  const PTRACE = ["process_vm_readv", "process_vm_writev", "ptrace"];
  const escaped = withEscapes(ours, ["ptrace"]);

  test("the escape is ptrace and process_vm_readv/writev, nothing else", () => {
    expect([...SECCOMP_ESCAPES.ptrace].sort()).toEqual(PTRACE);
    expect(Object.keys(SECCOMP_ESCAPES)).toEqual(["ptrace"]);
  });

  test("it is a valid profile, and the built-in one is left as it was", () => {
    expect(parseSeccompProfile(serializeProfile(escaped), "escaped")).toEqual(escaped);
    expect(ours).toEqual(JSON.parse(readFileSync(OURS_PATH, "utf8")));
    expect(serializeProfile(withEscapes(ours, []))).toBe(defaultSeccompText().json);
  });

  test("its hash is not the default's, and is the same every time", () => {
    const { json, hash } = profileText(escaped);
    expect(hash).not.toBe(defaultSeccompText().hash);
    expect(hash).toBe(createHash("sha256").update(json).digest("hex"));
    expect(profileText(withEscapes(defaultSeccompProfile(), ["ptrace", "ptrace"])).hash).toBe(hash);
  });

  for (const arch of ARCHES) {
    test(`${arch}: allows exactly those three syscalls more, unconditionally, and every other rule is unchanged`, () => {
      const before = allowedRules(ours, arch, "upper");
      const after = allowedRules(escaped, arch, "upper");
      const added = [...after.keys()].filter((name) => !before.has(name)).sort();
      expect(added).toEqual(PTRACE);
      for (const name of PTRACE) expect(after.get(name)).toEqual([[]]);
      for (const [name, alternatives] of before) expect({ name, rules: after.get(name) }).toEqual({ name, rules: alternatives });
      // The lower bound (what surely applies) says the same: no kernel or capability condition.
      expect([...allowedRules(escaped, arch, "lower").keys()].sort()).toEqual([...after.keys()].sort());
    });

    test(`${arch}: still nothing beyond Docker's default on Linux >= 4.8 (where Docker allows the three)`, () => {
      const docker = allowedRules(reference(), arch, "upper");
      const mine = allowedRules(escaped, arch, "upper");
      const violations: string[] = [];
      for (const [name, alternatives] of mine) {
        for (const conj of alternatives) if (!covered(conj, docker.get(name) ?? [])) violations.push(name);
      }
      expect(violations).toEqual([]);
      expect([...docker.keys()].filter((name) => !mine.has(name))).toEqual([]);
    });
  }

  test("a custom profile gets the same rule; rules that named the three give way to it", () => {
    const custom = parseSeccompProfile(
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [
          { names: ["read", "ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8" } },
          { name: "process_vm_readv", action: "SCMP_ACT_ERRNO", errnoRet: 38 },
          { names: ["process_vm_writev"], action: "SCMP_ACT_KILL" },
          { names: ["write"], action: "SCMP_ACT_ALLOW" },
        ],
      }),
      "custom.json",
    );
    const result = withEscapes(custom, ["ptrace"]);
    expect(result.syscalls?.map((e) => [e.names ?? e.name, e.action, e.includes ?? null])).toEqual([
      [["read"], "SCMP_ACT_ALLOW", { minKernel: "4.8" }],
      [["write"], "SCMP_ACT_ALLOW", null],
      [["ptrace", "process_vm_readv", "process_vm_writev"], "SCMP_ACT_ALLOW", null],
    ]);
    expect(result.syscalls?.at(-1)?.args).toBeUndefined();
    expect(custom.syscalls).toHaveLength(4);
    for (const arch of ARCHES) {
      const rules = allowedRules(result, arch, "lower");
      for (const name of PTRACE) expect(rules.get(name)).toEqual([[]]);
    }
  });

  test("a profile that allows by default only loses its refusals (libseccomp refuses a rule with the default's action)", () => {
    const allowAll = parseSeccompProfile(
      '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace","mount"],"action":"SCMP_ACT_ERRNO"}]}',
      "allow-all.json",
    );
    expect(withEscapes(allowAll, ["ptrace"]).syscalls).toEqual([{ names: ["mount"], action: "SCMP_ACT_ERRNO" }]);
  });

  test("anything but ptrace is refused", () => {
    expect(() => withEscapes(ours, ["ptrace", "mount"])).toThrow(UsageError);
  });

  test("loadSeccomp (what a run sends): the escape reaches the default and a custom profile, not unconfined", () => {
    expect(loadSeccomp("default", "/home/me")).toEqual({ kind: "default", ...defaultSeccompText() });
    expect(loadSeccomp("default", "/home/me", ["ptrace"])).toEqual({ kind: "default", ...profileText(escaped) });
    expect(loadSeccomp("unconfined", "/home/me", ["ptrace"])).toEqual({ kind: "unconfined" });
    const dir = mkdtempSync(path.join(tmpdir(), "sandbox-seccomp-"));
    try {
      const file = path.join(dir, "custom.json");
      writeFileSync(file, '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}');
      const plain = loadSeccomp(file, "/home/me");
      const loosened = loadSeccomp(file, "/home/me", ["ptrace"]);
      expect(loosened).toMatchObject({ kind: "custom", path: file });
      expect(loosened.kind === "custom" && plain.kind === "custom" && loosened.hash !== plain.hash).toBe(true);
      const sent = JSON.parse(loosened.kind === "custom" ? loosened.json : "{}") as SeccompProfile;
      expect(sent.syscalls?.map((e) => e.names)).toEqual([["read"], ["ptrace", "process_vm_readv", "process_vm_writev"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the comparison model", () => {
  const cond = (index: number, op: string, value: bigint, valueTwo = 0n): Cond => ({ index, op, value, valueTwo });

  test("runc ORs conditions on one argument: two NE conditions allow everything", () => {
    const split = runcConjunctions([cond(0, "SCMP_CMP_NE", 40n), cond(0, "SCMP_CMP_NE", 38n)]);
    expect(permits(split, [40n])).toBe(true);
    expect(covered([cond(0, "SCMP_CMP_NE", 40n)], [[cond(0, "SCMP_CMP_LT", 38n)], [cond(0, "SCMP_CMP_GT", 38n)]])).toBe(false);
  });

  test("a range set is covered by a union of Docker's ranges", () => {
    const docker = [[cond(0, "SCMP_CMP_LT", 38n)], [cond(0, "SCMP_CMP_EQ", 39n)], [cond(0, "SCMP_CMP_GT", 40n)]];
    expect(covered([cond(0, "SCMP_CMP_LE", 30n)], docker)).toBe(true);
    expect(covered([cond(0, "SCMP_CMP_NE", 38n)], docker)).toBe(false);
    expect(covered([], docker)).toBe(false);
  });

  test("masked conditions: stricter masks imply looser ones, unrelated ones do not", () => {
    const docker = [[cond(0, "SCMP_CMP_MASKED_EQ", 0xf0n, 0x10n)]];
    expect(covered([cond(0, "SCMP_CMP_MASKED_EQ", 0xffn, 0x12n)], docker)).toBe(true);
    expect(covered([cond(0, "SCMP_CMP_MASKED_EQ", 0x0fn, 0x00n)], docker)).toBe(false);
    expect(covered([cond(0, "SCMP_CMP_EQ", 0x13n)], docker)).toBe(true);
    expect(covered([cond(0, "SCMP_CMP_MASKED_EQ", 0xf0n, 0x10n)], [[]])).toBe(true);
    expect(covered([], docker)).toBe(false);
  });

  test("conditions on another argument do not widen Docker's rule", () => {
    expect(covered([cond(1, "SCMP_CMP_EQ", 1n)], [[cond(0, "SCMP_CMP_EQ", 1n)]])).toBe(false);
    expect(covered([cond(0, "SCMP_CMP_EQ", 1n), cond(1, "SCMP_CMP_EQ", 1n)], [[cond(0, "SCMP_CMP_EQ", 1n)]])).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Parsing, serialising, hashing
// ---------------------------------------------------------------------------

function parseError(text: string, source = "/tmp/my-profile.json"): UsageError {
  try {
    parseSeccompProfile(text, source);
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error("expected parseSeccompProfile to throw");
}

describe("parseSeccompProfile", () => {
  test("accepts Docker's own default profile", () => {
    // scripts/docker-seccomp-facts.ts parses Docker's file with this parser
    // before it records anything; here, the same profile rebuilt from the facts.
    expect(dockerFacts().syscallEntries).toBeGreaterThan(10);
    expect(reference().syscalls?.length).toBeGreaterThan(10);
  });

  test("round-trips the built-in profile", () => {
    expect(parseSeccompProfile(serializeProfile(ours), "built-in")).toEqual(ours);
  });

  test("keeps fields it does not know, so Docker still receives them", () => {
    const text = '{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["a"],"action":"SCMP_ACT_LOG","x":1}]}';
    expect(JSON.parse(serializeProfile(parseSeccompProfile(text, "f.json")))).toEqual(JSON.parse(text));
  });

  test("bad JSON names the file", () => {
    const error = parseError("{ not json");
    expect(error.message).toContain("/tmp/my-profile.json");
    expect(error.message).toContain("not valid JSON");
    expect(error.hint).toContain("defaultAction");
    expect(error.exitCode).toBe(125);
  });

  test("missing defaultAction", () => {
    const error = parseError('{"syscalls": []}');
    expect(error.message).toContain("/tmp/my-profile.json");
    expect(error.message).toContain("defaultAction");
  });

  test("wrong types name the field", () => {
    const cases: [string, string][] = [
      ['{"defaultAction": "ALLOW"}', "defaultAction"],
      ['{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": "read"}', "syscalls"],
      ['{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [1], "action": "SCMP_ACT_ALLOW"}]}', "syscalls[0].names[0]"],
      ['{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "allow"}]}', "syscalls[0].action"],
      [
        '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}',
        "syscalls[0].args[0].value",
      ],
      [
        '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}',
        "syscalls[0].args[0].op",
      ],
      [
        '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 18446744073709551615, "op": "SCMP_CMP_EQ"}]}]}',
        "2^53",
      ],
      ['{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "1"}', "defaultErrnoRet"],
      ["[]", "profile"],
    ];
    for (const [text, expected] of cases) {
      const error = parseError(text);
      expect(error.message).toContain("/tmp/my-profile.json");
      expect(error.message).toContain(expected);
    }
  });

  test("an entry needs exactly one of names and name", () => {
    const neither = parseError('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}');
    expect(neither.message).toContain("syscalls[0]");
    expect(neither.message).toContain("names");
    const both = parseError('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}');
    expect(both.message).toContain("not both");
    expect(parseSeccompProfile('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "action": "SCMP_ACT_ALLOW"}]}', "f").syscalls?.length).toBe(1);
  });

  test("architectures and archMap together are refused, like Docker does", () => {
    const error = parseError('{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": []}');
    expect(error.message).toContain("archMap");
  });
});

describe("loadSeccompProfileFile", () => {
  test("reads a valid file and names a missing or broken one", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sandbox-seccomp-"));
    try {
      const good = path.join(dir, "good.json");
      writeFileSync(good, serializeProfile(ours));
      expect(loadSeccompProfileFile(good)).toEqual(ours);

      const missing = path.join(dir, "missing.json");
      expect(() => loadSeccompProfileFile(missing)).toThrow(UsageError);
      expect(() => loadSeccompProfileFile(missing)).toThrow(`${missing} does not exist`);

      const broken = path.join(dir, "broken.json");
      writeFileSync(broken, '{"defaultAction": 1}');
      expect(() => loadSeccompProfileFile(broken)).toThrow(broken);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("serializeProfile and profileHash", () => {
  test("compact JSON, sha256 of exactly that text", () => {
    const text = serializeProfile(ours);
    expect(text).not.toContain("\n");
    expect(JSON.parse(text)).toEqual(ours);
    expect(profileHash(ours)).toBe(createHash("sha256").update(text).digest("hex"));
    expect(profileHash(ours)).toMatch(/^[0-9a-f]{64}$/);
    expect(profileHash(defaultSeccompProfile())).toBe(profileHash(ours));
  });

  test("defaultSeccompText (what each run sends) is the validated built-in profile's text and hash", () => {
    const sent = defaultSeccompText();
    expect(sent.json).toBe(serializeProfile(defaultSeccompProfile()));
    expect(sent.hash).toBe(profileHash(ours));
  });

  test("canonical: key order and whitespace do not change the text", () => {
    const a = parseSeccompProfile('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}', "a");
    const b = parseSeccompProfile('{ "syscalls": [ { "action": "SCMP_ACT_ALLOW", "names": ["read"] } ],\n "defaultAction": "SCMP_ACT_ERRNO" }', "b");
    expect(serializeProfile(a)).toBe('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW","names":["read"]}]}');
    expect(profileHash(a)).toBe(profileHash(b));
  });

  test("defaultSeccompProfile hands out copies", () => {
    const copy = defaultSeccompProfile();
    copy.defaultAction = "SCMP_ACT_ALLOW";
    expect(defaultSeccompProfile().defaultAction).toBe("SCMP_ACT_ERRNO");
  });
});
