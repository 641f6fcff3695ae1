import { SecurityError } from "./errors.ts";
import type { MountSpec } from "./engine-api.ts";
import { printable } from "./printable.ts";

/**
 * Guarding the host from what runs in the container, at the workspace mount:
 *
 *  - masks: secret-looking files and folders in the workspace are covered by
 *    an empty read-only file or folder, so the command reads nothing there;
 *    unix sockets are covered the same way, whatever their names, so a host
 *    service listening in the workspace (an engine's API) cannot be reached;
 *  - protects: paths the host later executes or trusts (git hooks and config,
 *    CI definitions, editor and agent settings) are mounted read-only over
 *    the writable workspace, so the command can read but not change them.
 *
 * Everything here is pure: the walk (src/workspace/walk.ts) hands in what it
 * found, this decides the mounts. docs/guard.md explains the choices.
 */

/** Secret-looking names, gitignore-style (see `compileMask`). `workspace.mask` adds to these. */
export const DEFAULT_MASK: readonly string[] = Object.freeze([
  ".env",
  ".env.*",
  "*.pem",
  "*.key",
  "id_rsa*",
  "id_ed25519*",
  ".npmrc",
  ".pypirc",
  ".netrc",
  ".aws/",
  ".ssh/",
  "*.tfstate",
  // Credentials by other names: git's store, registry and cluster logins,
  // database passwords, key stores, cloud service accounts, Terraform tokens.
  ".git-credentials",
  ".docker/config.json",
  ".kube/config",
  ".pgpass",
  "*.p12",
  "*.pfx",
  "credentials*.json",
  "service-account*.json",
  ".terraformrc",
]);

/** Paths the host executes or trusts, relative to the workspace root. `workspace.protect` adds to these. */
export const DEFAULT_PROTECT: readonly string[] = Object.freeze([
  ".git/hooks",
  ".git/config",
  // Whole: workflows, but also actions/**, dependabot and other CI files beside them.
  ".github",
  ".gitlab-ci.yml",
  ".vscode",
  ".idea",
  ".husky",
  ".claude",
  ".codex",
  ".devcontainer",
  ".sandbox.yml",
]);

/**
 * What a protected path that does not exist at the start is made as for the
 * run, to be bound read-only over itself so the command cannot create it
 * (then removed, if still as made: workspace/guard.ts, withMountpoints): an
 * empty folder, an empty file, or git's `commondir` naming its own git dir
 * (core/git-guard.ts).
 */
export type StandInKind = "dir" | "file" | "commondir";

/** DEFAULT_PROTECT entries made when missing (the `.git/...` ones only when `.git` is a folder: core/git-guard.ts). */
export const DEFAULT_STAND_INS: Readonly<Record<string, StandInKind>> = Object.freeze({
  ".github": "dir",
  ".gitlab-ci.yml": "file",
  ".vscode": "dir",
  ".idea": "dir",
  ".husky": "dir",
  ".claude": "dir",
  ".codex": "dir",
  ".devcontainer": "dir",
  ".sandbox.yml": "file",
});

/**
 * Folders the mask walk never enters, by name at any depth: dependency
 * trees, build output and caches. They are where big repositories keep most
 * of their files, and what they hold is fetched or generated, not the
 * developer's own secrets. `.git` is skipped whole: its config and hooks are
 * protected by path, and nothing in it is named like a secret.
 */
export const WALK_SKIP_DIRS: ReadonlySet<string> = new Set([
  ".git",
  ".hg",
  ".svn",
  "node_modules",
  "bower_components",
  ".pnpm-store",
  ".yarn",
  "vendor",
  ".venv",
  "venv",
  "__pycache__",
  ".tox",
  ".nox",
  ".mypy_cache",
  ".pytest_cache",
  ".ruff_cache",
  "target",
  "dist",
  "build",
  ".next",
  ".nuxt",
  ".svelte-kit",
  ".turbo",
  ".parcel-cache",
  ".gradle",
  "Pods",
]);

/**
 * Bounds of the mask walk. Depth 1 is the workspace's own entries. The walk
 * is breadth-first, so when a bound stops it the shallow paths (where `.env`
 * and friends usually live) have all been seen; the run then warns.
 */
export const WALK_LIMITS = Object.freeze({ maxDepth: 16, maxEntries: 200_000 });

/**
 * More masks than this and the run is refused: every mask is a mount, and a
 * few thousand mounts make the container slow to start or fail outright.
 * Narrow the list with `!pattern` exceptions in `workspace.mask`.
 */
export const MAX_MASK_MOUNTS = 256;

export type PathKind = "file" | "dir" | "other" | "missing";

/** One path found in the workspace, named relative to its root with `/` separators. */
export interface FoundPath {
  path: string;
  /** What it is after following symlinks ("missing": it, or its link target, does not exist). */
  kind: PathKind;
  /**
   * Set when a symlink is on the way: where the path really is, relative to
   * the workspace, or null when that is outside the workspace.
   */
  realPath?: string | null;
}

// ---------------------------------------------------------------- patterns

interface MaskRule {
  negate: boolean;
  dirOnly: boolean;
  /** Matched against the whole relative path (the pattern had a `/`), else against the name. */
  anchored: boolean;
  re: RegExp;
  /** Anchored patterns without wildcards: checked directly, wherever the walk goes. */
  literal: string | undefined;
}

export interface MaskMatcher {
  /** Whether `path` (relative, `/`-separated) is hidden; `isDir` for folders. */
  matches(path: string, isDir: boolean): boolean;
  /** Exact paths named by the patterns, to look up even where the walk does not go. */
  literals: readonly string[];
}

const GLOB_CHARS = /[*?[\]\\]/;

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * A glob as an anchored regex: `*` and `?` stay within one path segment,
 * `**` spans segments, `[abc]` / `[!abc]` are classes, `\x` is a literal x.
 * Hand-rolled rather than picomatch: compiling a dozen patterns with it costs
 * tens of milliseconds in a fresh process, on every run.
 */
export function globToRegex(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        const segmentStart = i === 1 || glob[i - 2] === "/";
        if (glob[i + 1] === "/" && segmentStart) {
          i++;
          re += "(?:[^/]*/)*";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let body = glob.slice(i + 1, end);
        const negate = body.startsWith("!") || body.startsWith("^");
        if (negate) body = body.slice(1);
        re += `[${negate ? "^/" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
        i = end;
      }
    } else if (c === "\\" && i + 1 < glob.length) re += escapeRegex(glob[++i] as string);
    else re += escapeRegex(c);
  }
  return new RegExp(`^${re}$`);
}

/**
 * gitignore-like patterns:
 *   `name`, `*.pem`   any file or folder with that name, at any depth
 *   `.aws/`           folders only
 *   `certs/*.key`, `/x`  a `/` anywhere but the end anchors at the workspace root; `**` spans folders
 *   `!pattern`        an exception: the last pattern that matches decides
 */
export function compileMask(patterns: readonly string[]): MaskMatcher {
  const rules: MaskRule[] = [];
  for (const raw of patterns) {
    let text = raw.trim();
    if (text === "" || text.startsWith("#")) continue;
    const negate = text.startsWith("!");
    if (negate) text = text.slice(1);
    const dirOnly = text.endsWith("/");
    text = text.replace(/\/+$/, "");
    const anchored = text.includes("/");
    text = text.replace(/^\/+/, "").replace(/^\.\//, "");
    if (text === "" || text.split("/").some((part) => part === "..")) continue;
    // Case-insensitive: `.ENV` or `ID_RSA` is the same secret (and the same file on
    // case-insensitive filesystems).
    const re = new RegExp(globToRegex(text).source, "i");
    const literal = anchored && !negate && !GLOB_CHARS.test(text) ? text : undefined;
    rules.push({ negate, dirOnly, anchored, re, literal });
  }
  // One combined test first: almost every name in a tree matches no rule, and
  // one regex is much cheaper than a dozen.
  const combined = (anchored: boolean) => {
    const sources = rules.filter((r) => !r.negate && r.anchored === anchored).map((r) => `(?:${r.re.source})`);
    // Each source is anchored (^…$) on its own, so an alternation of them is too.
    return sources.length === 0 ? undefined : new RegExp(sources.join("|"), "i");
  };
  const anyName = combined(false);
  const anyPath = combined(true);
  return {
    literals: rules.flatMap((r) => (r.literal !== undefined ? [r.literal] : [])),
    matches(path: string, isDir: boolean): boolean {
      const name = path.slice(path.lastIndexOf("/") + 1);
      if (!anyName?.test(name) && !anyPath?.test(path)) return false;
      let hidden = false;
      for (const rule of rules) {
        if (rule.dirOnly && !isDir) continue;
        if (rule.re.test(rule.anchored ? path : name)) hidden = !rule.negate;
      }
      return hidden;
    },
  };
}

/** `a/b/../c` → `a/c`; undefined when the path is absolute, empty or climbs out of the workspace. */
export function normalizeRelative(path: string): string | undefined {
  if (path.startsWith("/") || path.includes("\0")) return undefined;
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(part);
  }
  return out.length === 0 ? undefined : out.join("/");
}

/** Is `path` equal to `dir` or inside it (both relative, normalised)? */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

// ------------------------------------------------------------ protect list

/**
 * `core.hooksPath` from a repository's `.git/config`, as written; undefined
 * when unset. A small reader for the one key: sections, comments, quotes.
 */
export function parseHooksPath(configText: string): string | undefined {
  let section = "";
  let found: string | undefined;
  for (const rawLine of configText.split(/\r?\n/)) {
    const line = rawLine.trim();
    const header = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"[^"]*")?\s*\]\s*(.*)$/.exec(line);
    if (header) {
      section = (header[1] ?? "").toLowerCase();
      continue;
    }
    if (section !== "core") continue;
    const entry = /^hookspath\s*=\s*(.*)$/i.exec(line);
    if (!entry) continue;
    let value = (entry[1] ?? "").trim();
    if (value.startsWith('"')) {
      const end = value.indexOf('"', 1);
      value = end > 0 ? value.slice(1, end) : value.slice(1);
    } else value = value.replace(/\s[#;].*$/, "").trim();
    found = value; // the last one wins, as in git
  }
  return found === "" ? undefined : found;
}

export interface ProtectInputs {
  /** `workspace.protect` from the config. */
  extra: readonly string[];
  /** What `.git` is at the workspace root. */
  gitKind: PathKind;
  /** `core.hooksPath` from `.git/config`, when set. */
  hooksPath?: string | undefined;
  /** The workspace on the host (absolute), to place an absolute hooksPath. */
  workspace: string;
  /** Git's own candidates (core/git-guard.ts via workspace/git.ts), relative, with what each is made as when missing. */
  git?: ReadonlyArray<{ path: string; standIn: StandInKind | undefined }>;
}

/**
 * The relative paths to protect, in order, without duplicates; `ignored`
 * explains config entries that cannot be protected (absolute, outside).
 */
export function protectCandidates(input: ProtectInputs): { paths: string[]; ignored: string[]; standIns: Record<string, StandInKind> } {
  const paths: string[] = [];
  const ignored: string[] = [];
  const standIns: Record<string, StandInKind> = {};
  const add = (path: string, standIn?: StandInKind) => {
    if (!paths.includes(path)) paths.push(path);
    if (standIn !== undefined && standIns[path] === undefined) standIns[path] = standIn;
  };
  for (const path of DEFAULT_PROTECT) add(path, DEFAULT_STAND_INS[path]);
  for (const raw of input.extra) {
    const rel = normalizeRelative(raw.replace(/\/+$/, ""));
    if (rel === undefined) ignored.push(`workspace.protect "${printable(raw)}" is not a path inside the workspace; ignored`);
    // Missing, a path named with a trailing '/' is made a folder, any other an empty file: either keeps it from being created.
    else add(rel, raw.trim().endsWith("/") ? "dir" : "file");
  }
  for (const entry of input.git ?? []) add(entry.path, entry.standIn);
  // A `.git` file points git at a repository elsewhere (worktrees,
  // submodules); rewritten, it would send the host's git to a config and
  // hooks the command wrote.
  if (input.gitKind === "file") add(".git");
  if (input.hooksPath !== undefined) {
    const hooks = input.hooksPath;
    const rel = hooks.startsWith("/")
      ? isWithin(hooks, input.workspace)
        ? normalizeRelative(hooks.slice(input.workspace.length + 1))
        : undefined
      : hooks.startsWith("~")
        ? undefined
        : normalizeRelative(hooks);
    // A hooks folder outside the workspace is not in the container at all.
    if (rel !== undefined) add(rel, "dir");
  }
  return { paths, ignored, standIns };
}

// ------------------------------------------------------------------ mounts

export interface GuardInputs {
  /** Workspace on the host (absolute, symlinks resolved). */
  workspace: string;
  /** Where it is mounted in the container (e.g. /work). */
  target: string;
  /** Paths the mask walk matched (and literal mask paths that exist). */
  masked: readonly FoundPath[];
  /** Each protect candidate, looked up. */
  protected: readonly FoundPath[];
  /** Host paths of the empty read-only file and folder that cover masked paths. */
  emptyFile: string;
  emptyDir: string;
  /** The whole workspace is read-only already: protecting parts of it adds nothing. */
  readOnlyWorkspace: boolean;
  /**
   * Protected paths that are missing and may be made for the run (every
   * existing folder on the way is a real folder), with what to make.
   */
  standIns?: Readonly<Record<string, StandInKind>>;
}

export interface GuardPlan {
  mounts: MountSpec[];
  /** Relative paths hidden (as seen in the container, i.e. after symlinks). */
  masked: string[];
  /** Relative paths mounted read-only. */
  protected: string[];
  /**
   * Protected paths that do not exist: with a bind-mounted workspace they are
   * made (as the user) just before the container is created, bound read-only
   * like the others, and removed after the run if still as made. In copy mode
   * they are only kept out of the copy-back.
   */
  mountpoints: Array<{ path: string; kind: StandInKind }>;
  warnings: string[];
}

const join = (root: string, rel: string) => `${root.replace(/\/+$/, "")}/${rel}`;

/**
 * Mounts that hide `masked` and freeze `protected`. Every host path bound
 * here is the workspace's own (symlinks resolved and checked to stay
 * inside), or one of the two empty stand-ins: a link pointing outside the
 * workspace is never followed to a bind source.
 *
 * Protected paths also get their parent folders (up to the workspace root)
 * bound read-write over themselves: a mount point cannot be renamed or
 * removed (EBUSY), so the command cannot move `.github` aside and create a
 * new `.github/workflows` in its place.
 */
export function guardMounts(input: GuardInputs): GuardPlan {
  const warnings: string[] = [];
  const hidden = new Map<string, "file" | "dir">();
  for (const found of input.masked) {
    if (found.kind === "missing") continue;
    const real = found.realPath === undefined ? found.path : found.realPath;
    // A link to outside the workspace points at nothing in the container: nothing to hide.
    if (real === null) continue;
    hidden.set(real, found.kind === "dir" ? "dir" : "file");
  }
  // Inside a hidden folder everything is hidden already.
  const hiddenDirs = [...hidden].filter(([, kind]) => kind === "dir").map(([path]) => path);
  for (const path of [...hidden.keys()]) {
    if (hiddenDirs.some((dir) => dir !== path && isWithin(path, dir))) hidden.delete(path);
  }
  if (hidden.size > MAX_MASK_MOUNTS) {
    const sample = [...hidden.keys()].sort().slice(0, 5).map(printable).join(", ");
    throw new SecurityError(`${hidden.size} secret-looking paths in the workspace (more than ${MAX_MASK_MOUNTS} can be masked), e.g. ${sample}`, {
      hint: "Add exceptions such as '!test/fixtures/**' to workspace.mask in your config, or pass --no-mask to run without masking.",
    });
  }

  const frozen: string[] = [];
  const made = new Map<string, StandInKind>();
  if (!input.readOnlyWorkspace) {
    for (const found of input.protected) {
      if (found.kind === "missing") {
        const standIn = input.standIns?.[found.path];
        if (standIn === undefined || [...hidden.keys()].some((path) => isWithin(found.path, path))) continue;
        if (!frozen.includes(found.path)) frozen.push(found.path);
        made.set(found.path, standIn);
        continue;
      }
      if (found.realPath === null) {
        warnings.push(
          `${printable(found.path)} is a symlink to outside the workspace: not protected (its target is not in the container, but the link itself can be replaced)`,
        );
        continue;
      }
      const real = found.realPath ?? found.path;
      if (found.realPath !== undefined && found.realPath !== found.path) {
        warnings.push(`${printable(found.path)} is a symlink: protecting its target ${printable(real)}, but the link itself can be replaced`);
      }
      if ([...hidden.keys()].some((path) => isWithin(real, path))) continue;
      if (!frozen.includes(real)) frozen.push(real);
    }
  }
  // A protected folder covers what is under it.
  const protectedPaths = frozen.filter((path) => !frozen.some((other) => other !== path && isWithin(path, other))).sort();

  const pins = new Set<string>();
  for (const path of protectedPaths) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      if (!protectedPaths.some((p) => isWithin(ancestor, p))) pins.add(ancestor);
    }
  }

  const mounts: MountSpec[] = [];
  for (const pin of [...pins].sort()) {
    mounts.push({ Type: "bind", Source: join(input.workspace, pin), Target: join(input.target, pin), ReadOnly: false });
  }
  for (const path of protectedPaths) {
    mounts.push({ Type: "bind", Source: join(input.workspace, path), Target: join(input.target, path), ReadOnly: true });
  }
  const maskedPaths = [...hidden.keys()].sort();
  for (const path of maskedPaths) {
    const source = hidden.get(path) === "dir" ? input.emptyDir : input.emptyFile;
    mounts.push({ Type: "bind", Source: source, Target: join(input.target, path), ReadOnly: true });
  }
  const mountpoints = protectedPaths.flatMap((path) => {
    const kind = made.get(path);
    return kind === undefined ? [] : [{ path, kind }];
  });
  return { mounts, masked: maskedPaths, protected: protectedPaths, mountpoints, warnings };
}

/** The warning for a walk that stopped at a bound. */
export function truncationWarning(reason: "entries" | "depth", limit: number, example: string | undefined): string {
  const where = example ? ` (e.g. under ${printable(example)})` : "";
  return reason === "entries"
    ? `the workspace has more than ${limit} entries; secret masking looked at the first ${limit} (breadth-first)${where}. Deeper secrets may be visible: name them in workspace.mask (paths with a '/' are always checked).`
    : `folders deeper than ${limit} levels were not searched for secrets${where}. Name deeper secrets in workspace.mask (paths with a '/' are always checked).`;
}

/**
 * The line naming the unix sockets the guard covered (printed as info, so
 * --quiet hides it): a host service listening on one (an engine's API, an
 * agent's, a database's) would otherwise take the container's requests.
 */
export function socketNote(sockets: readonly string[], max = 5): string {
  const names = sockets.slice(0, max).map(printable).join(", ");
  const more = sockets.length > max ? ` and ${sockets.length - max} more` : "";
  return `masked ${sockets.length} unix socket${sockets.length === 1 ? "" : "s"} in the workspace (a host service listening there would answer the container): ${names}${more}`;
}

/**
 * The line naming what the guard hid and froze (info: --quiet hides it), so
 * a run's security decisions are never silent: the secret-looking paths
 * masked (sockets have their own line) and the existing paths made read-only
 * (the empty stand-ins for missing ones are not news). Undefined when there
 * is nothing to say.
 */
export function guardNote(plan: Pick<GuardPlan, "masked" | "protected" | "mountpoints">, sockets: readonly string[], max = 5): string | undefined {
  const list = (paths: readonly string[]) => `${paths.slice(0, max).map(printable).join(", ")}${paths.length > max ? ` and ${paths.length - max} more` : ""}`;
  const masked = plan.masked.filter((path) => !sockets.includes(path));
  const made = new Set(plan.mountpoints.map((m) => m.path));
  const frozen = plan.protected.filter((path) => !made.has(path));
  const parts = [
    ...(masked.length > 0 ? [`masked ${list(masked)} (empty inside)`] : []),
    ...(frozen.length > 0 ? [`read-only ${list(frozen)}`] : []),
  ];
  return parts.length > 0 ? `guard: ${parts.join("; ")} (docs/guard.md)` : undefined;
}
