import { lstatSync, watch, type FSWatcher } from "node:fs";
import type { MountSpec } from "../core/engine-api.ts";

/**
 * The guard's mounts (masks, protected paths and their pinned parents) sit on
 * the host's own directory entries. When the host replaces one of them (an
 * editor saving `.env` by writing a temp file and renaming it, `git config`
 * renaming `config.lock` over `.git/config`), the kernel detaches the mount in
 * the container's namespace, and the container then sees the new file through
 * the read-write workspace: the new `.env` readable, the new `.git/config`
 * writable. Nothing can re-attach a mount to a running container, so the
 * guard watches the entries' identities and the run is stopped at the first
 * change (docs/guard.md).
 *
 * inotify on each parent folder reports a change within milliseconds; a poll
 * covers what watching cannot see (a parent folder itself renamed, a watch
 * the platform refused).
 */

/** A path's identity: its device and inode, or null when it does not exist. */
export type Identity = { dev: number; ino: number } | null;

export interface IdentityChange {
  /** Relative to the workspace. */
  path: string;
  what: "replaced" | "removed" | "appeared";
}

export interface IdentityWatch {
  /** Stops watching; idempotent. */
  stop(): void;
  /** Whether it has stopped (a change seen, or stop() called). */
  stopped(): boolean;
}

export function identityOf(path: string): Identity {
  try {
    const st = lstatSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** What changed between two identities of one path, or undefined when nothing did. */
export function compareIdentity(before: Identity, now: Identity): IdentityChange["what"] | undefined {
  if (before === null) return now === null ? undefined : "appeared";
  if (now === null) return "removed";
  return before.dev === now.dev && before.ino === now.ino ? undefined : "replaced";
}

/**
 * Records the identities of `paths` (relative to `root`) now and calls
 * `onChange` once, for the first path whose identity changes afterwards.
 */
export function watchIdentities(
  root: string,
  paths: readonly string[],
  onChange: (change: IdentityChange) => void,
  options: { pollMs?: number } = {},
): IdentityWatch {
  const abs = (rel: string) => `${root.replace(/\/+$/, "")}/${rel}`;
  const recorded = new Map(paths.map((rel) => [rel, identityOf(abs(rel))] as const));
  const watchers: FSWatcher[] = [];
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    for (const w of watchers) w.close();
  };
  const check = () => {
    if (stopped) return;
    for (const [rel, before] of recorded) {
      const what = compareIdentity(before, identityOf(abs(rel)));
      if (what) {
        stop();
        onChange({ path: rel, what });
        return;
      }
    }
  };
  const timer = setInterval(check, options.pollMs ?? 500);
  // The watch must not keep a finished CLI alive.
  (timer as { unref?: () => void }).unref?.();
  const parents = new Set(paths.map((rel) => (rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : "")));
  for (const parent of parents) {
    try {
      const w = watch(parent === "" ? root : abs(parent), { persistent: false }, () => check());
      w.on("error", () => {}); // the poll still covers this folder
      watchers.push(w);
    } catch {
      // Not watchable (gone, or the platform's limit): the poll covers it.
    }
  }
  return { stop, stopped: () => stopped };
}

/** The workspace paths the guard's mounts sit on (relative), given where the workspace is mounted. */
export function guardedPaths(mounts: readonly MountSpec[], target: string): string[] {
  const prefix = `${target.replace(/\/+$/, "")}/`;
  return [...new Set(mounts.filter((m) => m.Target.startsWith(prefix)).map((m) => m.Target.slice(prefix.length)))].sort();
}
