/**
 * Is the engine's runc open to CVE-2024-21626 ("Leaky Vessels": a leaked
 * directory fd lets a container's working directory, or an image, reach the
 * host's filesystem)? Upstream fixed it in runc 1.1.12.
 *
 * Rules, applied to the version string the engine reports (Docker's
 * /info RuncCommit.ID; it is the runc package version on distributions and
 * `v1.1.12-0-g51d5e94`-style `git describe` output in upstream builds):
 *
 *   1. No runc version in the string (a bare commit hash, empty, another
 *      runtime such as crun or runsc): nothing is said.
 *   2. 1.1.12 or newer (every 1.2.0 release candidate came after the fix):
 *      fixed.
 *   3. Older, but the string carries a distribution revision for which the
 *      fix is known to be backported (DISTRO_BACKPORTS): fixed. A Debian
 *      revision `+debNNuM` counts when NN.M is at least the fixed one, so
 *      later security updates of the same upstream version count too.
 *   4. Older otherwise: vulnerable. When the string has a distribution
 *      revision we do not know, the warning says the distribution may have
 *      backported the fix.
 *
 * Known backports (each checked against the package's changelog):
 *   Debian 12 "bookworm": runc 1.1.5+ds1-1+deb12u1 ("CVE-2024-21626: several
 *   container breakouts due to internally leaked fds", 2 Feb 2024).
 */

export const RUNC_FIXED_VERSION = "1.1.12";
export const RUNC_CVE = "CVE-2024-21626";

export interface RuncVersion {
  major: number;
  minor: number;
  patch: number;
  /** Release candidate number; undefined for a release. */
  rc: number | undefined;
  /** The distribution revision after the upstream version (`+ds1-1+deb12u1`), or "". */
  revision: string;
  /** The upstream part as written (`1.1.5`, `1.0.0-rc93`). */
  upstream: string;
}

/** A Debian security update that carries the fix for an older upstream version. */
export interface DebianBackport {
  upstream: string;
  release: number;
  update: number;
}

export const DEBIAN_BACKPORTS: readonly DebianBackport[] = Object.freeze([{ upstream: "1.1.5", release: 12, update: 1 }]);

export type RuncVerdict =
  | { kind: "fixed"; version: string; via: "upstream" | "backport" }
  | { kind: "vulnerable"; version: string; distroRevision: boolean }
  | { kind: "unknown"; reason: string };

export interface RuntimeFacts {
  /** The engine's default runtime name ("runc", "io.containerd.runc.v2", "crun"...). */
  runtime: string | undefined;
  /** The version string the engine reports for runc. */
  runcVersion: string | undefined;
}

const VERSION_RE = /(?:^|[\s:])v?(\d+)\.(\d+)\.(\d+)(?:[-~.]?rc\.?(\d+))?(\S*)/;

/**
 * Finds the runc version in what an engine reports; undefined when there is
 * none (e.g. a bare commit hash). `runc --version` output (`runc version
 * 1.1.5+ds1` / `commit: 1.1.5+ds1-1+deb12u1`, as Podman reports it) is read
 * line by line, keeping the line with the fullest distribution revision.
 */
export function parseRuncVersion(text: string): RuncVersion | undefined {
  let best: RuncVersion | undefined;
  for (const line of text.trim().split("\n")) {
    const found = parseLine(line.trim().replace(/^(runc version|commit:)\s*/i, ""));
    if (found === undefined) continue;
    if (best === undefined) best = found;
    else if (found.upstream === best.upstream && found.revision.length > best.revision.length) best = found;
  }
  return best;
}

function parseLine(line: string): RuncVersion | undefined {
  const m = VERSION_RE.exec(line);
  if (!m) return undefined;
  const [, major, minor, patch, rc, rest = ""] = m;
  const upstreamEnd = m[0].length - rest.length;
  const upstream = m[0].slice(0, upstreamEnd).replace(/^[\s:]*v?/, "");
  // `git describe` output (`-0-g51d5e94`, `-dirty`) is no distribution revision.
  const revision = /^-\d+-g[0-9a-f]+/.test(rest) || /^-dirty$/.test(rest) ? "" : rest;
  return { major: Number(major), minor: Number(minor), patch: Number(patch), rc: rc === undefined ? undefined : Number(rc), revision, upstream };
}

/** Orders versions; a release candidate sorts before its release. */
export function compareRunc(a: Pick<RuncVersion, "major" | "minor" | "patch" | "rc">, b: Pick<RuncVersion, "major" | "minor" | "patch" | "rc">): number {
  // A release sorts after all of its release candidates.
  const rc = (v: number | undefined) => (v === undefined ? Number.MAX_SAFE_INTEGER : v);
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || rc(a.rc) - rc(b.rc);
}

function isDebianBackport(v: RuncVersion): boolean {
  const m = /\+deb(\d+)u(\d+)$/.exec(v.revision);
  if (!m) return false;
  const release = Number(m[1]);
  const update = Number(m[2]);
  return DEBIAN_BACKPORTS.some((b) => b.upstream === v.upstream && (release > b.release || (release === b.release && update >= b.update)));
}

/** Runtimes that are runc under another name. */
function isRunc(runtime: string | undefined): boolean {
  return runtime === undefined || runtime === "" || /runc/i.test(runtime);
}

export function checkRunc(facts: RuntimeFacts): RuncVerdict {
  if (!isRunc(facts.runtime)) return { kind: "unknown", reason: `the default runtime is ${facts.runtime}, not runc` };
  const text = facts.runcVersion?.trim() ?? "";
  if (text === "") return { kind: "unknown", reason: "the engine does not report its runc version" };
  const version = parseRuncVersion(text);
  if (!version) return { kind: "unknown", reason: `no version in "${text}"` };
  const fixed = parseRuncVersion(RUNC_FIXED_VERSION) as RuncVersion;
  const shown = `${version.upstream}${version.revision}`;
  if (compareRunc(version, fixed) >= 0) return { kind: "fixed", version: shown, via: "upstream" };
  if (isDebianBackport(version)) return { kind: "fixed", version: shown, via: "backport" };
  return { kind: "vulnerable", version: shown, distroRevision: version.revision !== "" };
}

/** One entry of GET /version's Components. */
export interface VersionComponent {
  Name?: string;
  Version?: string;
}

/**
 * The runc version GET /version lists: Docker names the component `runc`,
 * Podman `OCI Runtime (runc)` with `runc --version`'s text (its /info
 * leaves RuncCommit empty, so this is the only place Podman says it).
 */
export function runcFromComponents(components: readonly VersionComponent[] | null | undefined): string | undefined {
  const runc = (components ?? []).find((c) => /^(?:runc|OCI Runtime \(runc\))$/i.test(c.Name ?? ""));
  return runc?.Version || undefined;
}

/** The warning to show for a verdict, if any. */
export function runcWarning(verdict: RuncVerdict): string | undefined {
  if (verdict.kind !== "vulnerable") return undefined;
  const maybe = verdict.distroRevision ? " (unless your distribution backported the fix)" : "";
  return (
    `the engine's runc ${verdict.version} is older than ${RUNC_FIXED_VERSION} and open to ${RUNC_CVE}${maybe}: ` +
    "a container can reach the host's filesystem through a leaked file descriptor. Update runc (or the engine) on the engine's host."
  );
}
