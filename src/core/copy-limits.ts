import { SandboxError } from "./errors.ts";

/**
 * Copy mode's caps on what comes back from the container
 * (engine/workspace-copy.ts): the command chose how much it wrote, and
 * without a cap a runaway build, or a hostile repository's script, fills
 * the host's disk or its inodes through the copy-back.
 *
 * Both count what would be written on the host: new and changed files,
 * folders, symlinks and hard links (files unchanged since they were sent
 * cost nothing). Sizes are apparent sizes, as the archive's headers state
 * them: a sparse file counts its full length although it is written back
 * sparse, as every later plain copy of it (cp, tar, a backup) would write it
 * in full, and the engine sends all of its bytes.
 */
export interface CopyBackLimits {
  /** Bytes of new and changed files. */
  maxBytes: number;
  /** New and changed files, folders and links. */
  maxFiles: number;
}

/**
 * Far above what a build or an install leaves in a workspace (a large
 * node_modules is 100,000-300,000 files and 1-2 GiB; a Rust target folder
 * a few GiB), far below a disk or inode table.
 */
export const DEFAULT_COPY_BACK_LIMITS: Readonly<CopyBackLimits> = Object.freeze({ maxBytes: 8 * 1024 ** 3, maxFiles: 500_000 });

/** The config keys that raise the caps, for messages (config/settings.ts declares them). */
export const COPY_BACK_KEYS = { maxBytes: "workspace.copy_back.max_size", maxFiles: "workspace.copy_back.max_files" } as const;

/** The container's changes exceed a cap: nothing was copied back (exit 125; the container is kept). */
export class CopyBackLimitError extends SandboxError {}
