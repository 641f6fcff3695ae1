import { isWithin, normalizeRelative, type StandInKind } from "./workspace-guard.ts";
import { printable } from "./printable.ts";

/**
 * Git's side of the workspace guard (docs/guard.md, "Git"): what git reads
 * to decide what to *execute* must not be writable from inside, or the
 * host's next `git status` / `git commit` runs the command's code (a
 * `core.fsmonitor`, a hook, a filter). Pure: src/workspace/git.ts reads the
 * files and hands their text in.
 */

/**
 * `commondir` names the folder whose `config`, `hooks` and objects a git dir
 * uses. Git reads it whenever it exists (an empty one is a fatal error), so
 * a missing one cannot be covered by an empty file: it is made naming the
 * git dir itself (`.`), which git treats exactly like no `commondir`.
 */
export const COMMONDIR_STAND_IN = ".\n";

/**
 * Inside one git dir (relative to it), what git reads to decide what to run,
 * and what each is made as when missing. `worktrees` is protected only when
 * it exists: a new linked worktree is used by the host only through a new
 * `.git` file, which the check after the run finds.
 */
export const GIT_DIR_PROTECT: ReadonlyArray<readonly [string, StandInKind | undefined]> = Object.freeze([
  ["config", "file"],
  ["hooks", "dir"],
  ["commondir", "commondir"],
  ["config.worktree", "file"],
  ["info/attributes", "file"],
  ["worktrees", undefined],
] as const);

/** At most this many git dirs (the workspace's, nested repositories', submodules') are protected; beyond, a warning. */
export const MAX_GIT_DIRS = 32;

export interface GitConfigEntry {
  /** Lowercased section name (`core`, `include`, `includeif`). */
  section: string;
  subsection: string | undefined;
  /** Lowercased key. */
  key: string;
  /** The value, unquoted and unescaped; `true` for a bare key. */
  value: string;
}

/** A git config file's entries in order: sections (`[a "b"]`, `[a.b]`), comments, quotes, escapes, continued lines. */
export function parseGitConfig(text: string): GitConfigEntry[] {
  const entries: GitConfigEntry[] = [];
  let section = "";
  let subsection: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? "").trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      const header = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\](.*)$/.exec(line);
      if (!header) continue;
      const name = header[1] ?? "";
      if (header[2] !== undefined) {
        section = name.toLowerCase();
        subsection = header[2].replace(/\\(.)/g, "$1");
      } else {
        const dot = name.indexOf(".");
        section = (dot < 0 ? name : name.slice(0, dot)).toLowerCase();
        subsection = dot < 0 ? undefined : name.slice(dot + 1).toLowerCase();
      }
      line = (header[3] ?? "").trim();
      if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    }
    const keyMatch = /^([A-Za-z][A-Za-z0-9-]*)\s*(=)?\s*(.*)$/.exec(line);
    if (!keyMatch) continue;
    const key = (keyMatch[1] ?? "").toLowerCase();
    if (keyMatch[2] === undefined) {
      entries.push({ section, subsection, key, value: "true" });
      continue;
    }
    let raw = keyMatch[3] ?? "";
    // A value ending in an unescaped backslash goes on on the next line.
    while (/(^|[^\\])(\\\\)*\\$/.test(raw) && i + 1 < lines.length) raw = raw.slice(0, -1) + (lines[++i] ?? "");
    entries.push({ section, subsection, key, value: unquote(raw) });
  }
  return entries;
}

function unquote(raw: string): string {
  let out = "";
  let quoted = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '"') quoted = !quoted;
    else if (c === "\\" && i + 1 < raw.length) {
      const n = raw[++i] as string;
      out += n === "n" ? "\n" : n === "t" ? "\t" : n === "b" ? "\b" : n;
    } else if (!quoted && (c === "#" || c === ";")) break;
    else out += c;
  }
  return quoted ? out : out.replace(/\s+$/, "");
}

/** What the guard needs from one config file: `core.hooksPath` (last wins), include targets, and the worktree-config extension. */
export interface GitConfigFacts {
  hooksPath: string | undefined;
  /** `include.path` and `includeIf.*.path` values, as written, whatever the condition. */
  includes: string[];
}

export function gitConfigFacts(text: string): GitConfigFacts {
  let hooksPath: string | undefined;
  const includes: string[] = [];
  for (const e of parseGitConfig(text)) {
    if (e.section === "core" && e.subsection === undefined && e.key === "hookspath") hooksPath = e.value;
    if ((e.section === "include" || e.section === "includeif") && e.key === "path" && e.value !== "") includes.push(e.value);
  }
  return { hooksPath: hooksPath === "" ? undefined : hooksPath, includes };
}

/**
 * A path from git config as an absolute host path: `~/` is the home folder,
 * a relative one is relative to `base` (the including file's folder for
 * includes, the work tree for `core.hooksPath`). Undefined for `~user/` forms.
 */
export function resolveGitPath(value: string, base: string, home: string | undefined): string | undefined {
  let path: string;
  if (value === "~" || value.startsWith("~/")) {
    if (home === undefined) return undefined;
    path = `${home.replace(/\/+$/, "")}${value.slice(1)}`;
  } else if (value.startsWith("~")) return undefined;
  else if (value.startsWith("/")) path = value;
  else path = `${base.replace(/\/+$/, "")}/${value}`;
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** An absolute host path relative to the workspace `root`; undefined when outside it (or the root itself). */
export function insideWorkspace(root: string, abs: string): string | undefined {
  if (!isWithin(abs, root) || abs === root) return undefined;
  return normalizeRelative(abs.slice(root.length + 1));
}

/** `gitdir: <path>` from a `.git` file, as written; undefined when it is not one. */
export function parseGitFile(text: string): string | undefined {
  const m = /^gitdir:\s*(.*?)\s*$/m.exec(text);
  return m?.[1] ? m[1] : undefined;
}

/** `a` joined with `b`, where `a` may be "" (the workspace root). */
export const relJoin = (a: string, b: string) => (a === "" ? b : `${a}/${b}`);

/** The protect candidates of one git dir `gitDir` (relative to the workspace, "" for a bare workspace). */
export function gitDirCandidates(gitDir: string, worktreesExist: boolean): Array<{ path: string; standIn: StandInKind | undefined }> {
  return GIT_DIR_PROTECT.filter(([name]) => name !== "worktrees" || worktreesExist).map(([name, standIn]) => ({ path: relJoin(gitDir, name), standIn }));
}

// ------------------------------------------------------------- after the run

/** A repository the check after the run found new, and where its git dir (or a bare one's HEAD) was moved. */
export interface Quarantined {
  /** The `.git` entry (or a bare repository's `HEAD`), relative. */
  path: string;
  /** Where it is now, relative. */
  movedTo: string;
}

/** The name a new repository's `.git` (or a bare one's HEAD) is moved to. */
export function quarantineName(path: string, stamp: string): string {
  return `${path}.sandbox-quarantine-${stamp}`;
}

/** The loud warning for each new repository the check after the run put aside. */
export function quarantineWarning(q: Quarantined, workspace: string): string {
  const dir = q.path.includes("/") ? q.path.slice(0, q.path.lastIndexOf("/")) : ".";
  const what = q.path.endsWith("HEAD") ? "a bare git repository" : "a git repository";
  return (
    `the command made ${what} in ${printable(dir)} during the run: its config and hooks could run code on this machine when git is used there (a shell prompt, an editor, 'git status'). ` +
    `Moved ${printable(q.path)} aside to ${printable(q.movedTo)}. Read its config and hooks first; to restore it: mv '${printable(`${workspace}/${q.movedTo}`)}' '${printable(`${workspace}/${q.path}`)}'`
  );
}
