import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { SandboxError, UsageError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";

/**
 * `sandbox apply --commit -m MSG` (docs/review.md): the applied paths, and
 * only they, committed on the host with the host's own git. The user's
 * other staged changes stay staged and out of the commit (`git commit
 * --only`). Git's hooks are not run: a hook folder in the workspace (a
 * `.husky/`, `core.hooksPath`) may hold what the command just wrote.
 */

type Env = Record<string, string | undefined>;

export interface CommitResult {
  /** The new commit's short id; undefined when the applied paths left nothing to commit. */
  commit: string | undefined;
  /** Paths committed (changed against HEAD). */
  committed: string[];
  /** Applied paths git ignores (.gitignore): not committed. */
  ignored: string[];
}

/** Git failed: the message is git's own. Applied changes stay applied. */
export class GitCommitError extends SandboxError {}

function git(workspace: string, env: Env, args: readonly string[], input?: string, literal = true) {
  // Paths are file names, never patterns (a file may be named `*`). No hook runs for any of these calls
  // (git add can run post-index-change): the workspace's hooks may be what the command just wrote.
  return spawnSync("git", [...(literal ? ["--literal-pathspecs"] : []), "-c", "core.hooksPath=/dev/null", ...args], { cwd: workspace, env: env as NodeJS.ProcessEnv, input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
}

/** Refused before anything is applied (exit 125): no message, no git, not a git working tree. */
export function checkCommit(workspace: string, env: Env, message: string | undefined): void {
  if (message === undefined || message.trim() === "") {
    throw new UsageError("sandbox apply --commit needs a commit message (-m MSG)", { hint: "e.g. sandbox apply ID --commit -m 'Fix the parser'" });
  }
  const inside = git(workspace, env, ["rev-parse", "--is-inside-work-tree"]);
  if (inside.error) throw new UsageError(`sandbox apply --commit needs git on this machine (${inside.error.message})`, { hint: "Install git, or apply without --commit." });
  if (inside.status !== 0 || inside.stdout.trim() !== "true") {
    throw new UsageError(`sandbox apply --commit: ${printable(workspace)} is not in a git working tree`, { hint: "Apply without --commit, or run 'git init' there first." });
  }
}

/** Applied paths (relative to the workspace, a rename's two paths included) staged and committed as one commit. */
export function commitPaths(workspace: string, env: Env, paths: readonly string[], message: string): CommitResult {
  // Git's own files (applied objects, refs) are never pathspecs: git does not track them.
  const wanted = [...new Set(paths)].filter((p) => !p.split("/").includes(".git")).sort();
  if (wanted.length === 0) return { commit: undefined, committed: [], ignored: [] };
  // check-ignore takes no --literal-pathspecs, and reads a leading `:` as pathspec magic (a file named `:(glob)x` made it fail):
  // `./` in front keeps every name a plain path, and it answers with the names as given.
  const ignoredRun = git(workspace, env, ["check-ignore", "-z", "--stdin"], wanted.map((p) => `./${p}\0`).join(""), false);
  if (ignoredRun.status !== 0 && ignoredRun.status !== 1) throw failure("check-ignore", ignoredRun.stderr);
  const ignored = new Set(ignoredRun.stdout.split("\0").filter(Boolean).map((p) => p.replace(/^\.\//, "")));
  const kept = wanted.filter((p) => !ignored.has(p));
  const present = kept.filter((p) => existsSync(`${workspace}/${p}`));
  const gone = kept.filter((p) => !existsSync(`${workspace}/${p}`));
  if (present.length > 0) {
    const added = git(workspace, env, ["add", "-A", "--", ...present]);
    if (added.status !== 0) throw failure("add", added.stderr);
  }
  if (gone.length > 0) {
    const removed = git(workspace, env, ["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", ...gone]);
    if (removed.status !== 0) throw failure("rm --cached", removed.stderr);
  }
  // What differs from HEAD among them now: a pathspec git knows, as `commit --only` needs.
  const staged = git(workspace, env, ["diff", "--cached", "--name-only", "-z", "--no-renames", "--", ...kept]);
  if (staged.status !== 0) throw failure("diff --cached", staged.stderr);
  const committed = staged.stdout.split("\0").filter(Boolean);
  if (committed.length === 0) return { commit: undefined, committed, ignored: [...ignored] };
  // --only: these paths alone, whatever else the user has staged; names relative to the top, hence :/ from there.
  const top = git(workspace, env, ["rev-parse", "--show-toplevel"]).stdout.trim();
  const commit = spawnSync("git", ["--literal-pathspecs", "-c", "core.hooksPath=/dev/null", "commit", "-q", "--no-verify", "--only", "-m", message, "--", ...committed], {
    cwd: top || workspace,
    env: env as NodeJS.ProcessEnv,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (commit.status !== 0) throw failure("commit", `${commit.stdout}${commit.stderr}`);
  const id = git(workspace, env, ["rev-parse", "--short", "HEAD"]).stdout.trim();
  return { commit: id, committed, ignored: [...ignored] };
}

function failure(step: string, stderr: string): GitCommitError {
  return new GitCommitError(`git ${step} failed: ${printable(stderr.trim().split("\n").slice(-3).join(" / "))}`, {
    exitCode: 1,
    hint: "The changes were applied; commit them with git yourself.",
  });
}
