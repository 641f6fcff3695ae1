import { readFile } from "node:fs/promises";
import {
  gitConfigFacts,
  gitDirCandidates,
  insideWorkspace,
  MAX_GIT_DIRS,
  parseGitFile,
  relJoin,
  resolveGitPath,
} from "../core/git-guard.ts";
import type { StandInKind } from "../core/workspace-guard.ts";
import { printable } from "../core/printable.ts";
import { WorkspaceFileRefused } from "./read-file.ts";
import { lookUp, nodeWalkFs, type WalkFs } from "./walk.ts";

/**
 * The I/O half of git's guard (core/git-guard.ts): finds every git dir the
 * workspace walk saw (the workspace's `.git`, nested repositories' `.git`
 * folders and files, bare repositories, submodules under `modules/`, a
 * `commondir` pointing inside), reads their config and the host's (system,
 * global, included files) for `core.hooksPath` and include targets, and
 * returns what to protect.
 */

/** Where the host's own git config lives: environment and home folder. */
export interface GitHost {
  env: Readonly<Record<string, string | undefined>>;
  home: string | undefined;
  /** Reads a host file (following links: it is the user's own); undefined when absent. Tests hand in a fake. */
  readHostText?: (path: string) => Promise<string | undefined>;
}

export interface GitProtect {
  candidates: Array<{ path: string; standIn: StandInKind | undefined }>;
  warnings: string[];
}

const MAX_INCLUDE_DEPTH = 10;
const HOST_FILE_MAX_BYTES = 1024 * 1024;

async function readHostFile(path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, "utf8");
    return text.length > HOST_FILE_MAX_BYTES ? text.slice(0, HOST_FILE_MAX_BYTES) : text;
  } catch {
    return undefined;
  }
}

/** The host's system and global config files, in the order git reads them. */
export function hostConfigFiles(host: GitHost): string[] {
  const { env, home } = host;
  const files: string[] = [];
  const truthy = (v: string | undefined) => v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
  if (!truthy(env.GIT_CONFIG_NOSYSTEM)) files.push(env.GIT_CONFIG_SYSTEM || "/etc/gitconfig");
  if (env.GIT_CONFIG_GLOBAL) files.push(env.GIT_CONFIG_GLOBAL);
  else {
    const xdg = env.XDG_CONFIG_HOME || (home ? `${home}/.config` : undefined);
    if (xdg) files.push(`${xdg}/git/config`);
    if (home) files.push(`${home}/.gitconfig`);
  }
  return files;
}

export async function gitProtect(root: string, repos: readonly string[], host: GitHost | undefined, fs: WalkFs = nodeWalkFs): Promise<GitProtect> {
  const candidates: GitProtect["candidates"] = [];
  const warnings: string[] = [];
  const protect = (path: string, standIn: StandInKind | undefined) => candidates.push({ path, standIn });
  const readHost = host?.readHostText ?? readHostFile;
  // A workspace file: never through a link (read-file.ts). Only the workspace's own .git/config is refused
  // loudly (as before); a nested repository's odd config is as good as unreadable, and protected anyway.
  const readInside = async (rel: string, loud: boolean) => {
    try {
      return await fs.readText(`${root}/${rel}`);
    } catch (err) {
      if (loud || !(err instanceof WorkspaceFileRefused)) throw err;
      return undefined;
    }
  };

  /** hooksPath values: from the host's files (every repository), or one repository's. */
  const hostHooks: string[] = [];
  const seenFiles = new Set<string>();
  /** Reads one config file (absolute path) and its includes: include targets inside the workspace are protected. */
  const readConfig = async (abs: string, text: string | undefined, hooks: string[], depth: number): Promise<void> => {
    if (text === undefined || depth > MAX_INCLUDE_DEPTH) return;
    const facts = gitConfigFacts(text);
    if (facts.hooksPath !== undefined) hooks.push(facts.hooksPath);
    const dir = abs.slice(0, abs.lastIndexOf("/")) || "/";
    for (const include of facts.includes) {
      const target = resolveGitPath(include, dir, host?.home);
      if (target === undefined || seenFiles.has(target)) continue;
      seenFiles.add(target);
      const rel = insideWorkspace(root, target);
      if (rel !== undefined) {
        protect(rel, "file");
        await readConfig(target, await readInside(rel, false), hooks, depth + 1);
      } else await readConfig(target, await readHost(target), hooks, depth + 1);
    }
  };
  if (host) {
    for (const file of hostConfigFiles(host)) {
      const rel = insideWorkspace(root, file);
      if (rel !== undefined) protect(rel, undefined);
      await readConfig(file, rel !== undefined ? await readInside(rel, false) : await readHost(file), hostHooks, 0);
    }
  }

  // Git dirs, each with the work tree its relative hooksPath is taken from.
  const gitDirs: Array<{ gitDir: string; workTree: string }> = [];
  const queued = new Set<string>();
  const queue = (gitDir: string, workTree: string) => {
    if (queued.has(gitDir)) return;
    queued.add(gitDir);
    gitDirs.push({ gitDir, workTree });
  };
  for (const entry of repos) {
    const slash = entry.lastIndexOf("/");
    const parent = slash < 0 ? "" : entry.slice(0, slash);
    if (entry.endsWith("HEAD")) {
      // A bare repository: its hooks run in the git dir itself.
      queue(parent, parent);
      continue;
    }
    const found = await lookUp(root, entry, fs);
    if (found.kind === "missing") continue;
    if (found.realPath === null) {
      warnings.push(`${printable(entry)} is a symlink to outside the workspace: the repository it names is not in the container, but the link itself can be replaced`);
      continue;
    }
    if (found.kind === "dir") {
      queue(found.realPath ?? entry, parent);
      continue;
    }
    if (found.kind !== "file") continue;
    // A `.git` file (a worktree's or a submodule's): rewritten, it would send the host's git to a config the command wrote.
    protect(found.realPath ?? entry, undefined);
    const pointer = parseGitFile((await readInside(found.realPath ?? entry, false)) ?? "");
    const target = pointer === undefined ? undefined : resolveGitPath(pointer, parent === "" ? root : `${root}/${parent}`, undefined);
    const rel = target === undefined ? undefined : insideWorkspace(root, target);
    if (rel !== undefined && (await lookUp(root, rel, fs)).kind === "dir") queue(rel, parent);
  }

  for (let i = 0; i < gitDirs.length; i++) {
    if (i >= MAX_GIT_DIRS) {
      const rest = gitDirs.slice(i).map((g) => printable(g.gitDir || "."));
      warnings.push(
        `${gitDirs.length} git repositories in the workspace: only the first ${MAX_GIT_DIRS} are protected; not ${rest.slice(0, 5).join(", ")}${rest.length > 5 ? ` and ${rest.length - 5} more` : ""}`,
      );
      break;
    }
    const { gitDir, workTree } = gitDirs[i] as { gitDir: string; workTree: string };
    const worktrees = await fs.lkindOf(`${root}/${relJoin(gitDir, "worktrees")}`);
    for (const c of gitDirCandidates(gitDir, worktrees !== "missing")) protect(c.path, c.standIn);

    const hooks: string[] = [];
    const configRel = relJoin(gitDir, "config");
    await readConfig(`${root}/${configRel}`, await readInside(configRel, gitDir === ".git"), hooks, 0);
    const worktreeRel = relJoin(gitDir, "config.worktree");
    await readConfig(`${root}/${worktreeRel}`, await readInside(worktreeRel, false), hooks, 0);
    const workTreeAbs = workTree === "" ? root : `${root}/${workTree}`;
    for (const value of [...hostHooks, ...hooks]) {
      const abs = resolveGitPath(value, workTreeAbs, host?.home);
      const rel = abs === undefined ? undefined : insideWorkspace(root, abs);
      // A hooks folder outside the workspace is not in the container at all.
      if (rel !== undefined) protect(rel, "dir");
    }

    // A commondir that exists (a linked worktree's git dir) names the folder whose config and hooks count.
    const common = await readInside(relJoin(gitDir, "commondir"), false);
    if (common !== undefined && common.trim() !== "") {
      const abs = resolveGitPath(common.trim(), gitDir === "" ? root : `${root}/${gitDir}`, undefined);
      const rel = abs === undefined ? undefined : insideWorkspace(root, abs);
      if (rel !== undefined && (await lookUp(root, rel, fs)).kind === "dir") queue(rel, workTree);
    }
    // Submodules' git dirs: `modules/<name>` (a name may hold '/'), each with its own config, hooks and modules.
    for (const module of await findModules(root, relJoin(gitDir, "modules"), fs)) queue(module, workTree);
  }
  return { candidates, warnings };
}

/** Git dirs under a `modules` folder: folders holding a HEAD, looked for a few levels down. */
async function findModules(root: string, modules: string, fs: WalkFs): Promise<string[]> {
  const found: string[] = [];
  let level = [modules];
  for (let depth = 0; depth < 4 && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      const listing = await fs.list(`${root}/${dir}`);
      if (!listing) continue;
      if (dir !== modules && listing.some((e) => e.name === "HEAD")) {
        found.push(dir);
        continue;
      }
      for (const e of listing) if (e.kind === "dir") next.push(`${dir}/${e.name}`);
    }
    level = next;
  }
  return found;
}
