/**
 * Benchmarks, printed as figures (never asserted in tests):
 *  1. median wall time of `sandbox run --image IMG true` vs `docker run --rm`
 *     with the same security options, interleaved in one go, and the ratio;
 *     and vs `docker run` with sandbox's whole body (the guard's mounts too);
 *     and the floor: scripts/bench-floor.ts (the docker run sequence through
 *     sandbox's engine door, nothing else) against a plain `docker run --rm`;
 *  2. `dist/sandbox --version` cold start median;
 *  3. wall time and peak RSS piping N MiB through `sandbox run cat` vs
 *     `docker run -i` (GNU time's %M);
 *  4. the workspace guard on a tree of BENCH_TREE_FILES files (50,000): the
 *     checks after a run (new repositories; setuid/setgid bits) timed
 *     directly, and `run true` there against the same in an empty folder;
 *  5. review mode (docs/review.md) on that tree: `run true` in review, bind
 *     and copy mode, interleaved, and the ratio review/bind (also as a
 *     non-root user, where bind mode skips its setuid walk); then
 *     `sandbox apply` of a change set of BENCH_APPLY_FILES (1,000) changed
 *     files.
 * Env: BENCH_RUNS (default 10), BENCH_PIPE_MB (256), BENCH_PIPE_RUNS (3),
 * BENCH_TREE_FILES (50000), BENCH_APPLY_FILES (1000), SANDBOX_TEST_IMAGE,
 * BENCH_BIN (default dist/sandbox, built when missing).
 */
import { $ } from "bun";
import { existsSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defaultSeccompProfile, serializeProfile } from "../src/security/seccomp.ts";
import { CONTAINER_HOME, NOFILE_LIMIT, TMPFS_SIZES } from "../src/core/plan.ts";
import { quarantineNewRepositories } from "../src/workspace/run-guard.ts";
import { DEFAULT_STAND_INS } from "../src/core/workspace-guard.ts";
import { clearNewSetIdBits } from "../src/workspace/setid.ts";
import { mkdirSync } from "node:fs";
import { compile } from "./build.ts";

const ROOT = resolve(import.meta.dir, "..");
const BIN = process.env.BENCH_BIN ? resolve(process.env.BENCH_BIN) : resolve(ROOT, "dist/sandbox");
const IMAGE = process.env.SANDBOX_TEST_IMAGE ?? "sandbox-test/busybox:1";
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const PIPE_MB = Number(process.env.BENCH_PIPE_MB ?? 256);
const PIPE_RUNS = Number(process.env.BENCH_PIPE_RUNS ?? 3);
const TREE_FILES = Number(process.env.BENCH_TREE_FILES ?? 50_000);
const APPLY_FILES = Number(process.env.BENCH_APPLY_FILES ?? 1000);

if (!existsSync(BIN)) await $`bun scripts/build.ts`.cwd(ROOT);

const tmp = mkdtempSync(join(tmpdir(), "sandbox-bench-"));
const profile = join(tmp, "seccomp.json");
writeFileSync(profile, serializeProfile(defaultSeccompProfile()));
const uid = process.getuid?.() ?? 1000;
const gid = process.getgid?.() ?? 1000;

/** The docker CLI equivalent of sandbox's default plan, option for option. */
const dockerSecurity = [
  "--init", "--read-only", "--cap-drop", "ALL",
  "--security-opt", "no-new-privileges:true", "--security-opt", `seccomp=${profile}`,
  "--memory", "4g", "--memory-swap", "4g", "--pids-limit", "512",
  "--ulimit", `nofile=${NOFILE_LIMIT}:${NOFILE_LIMIT}`, "--shm-size", String(TMPFS_SIZES.shm),
  "--tmpfs", `/tmp:rw,exec,nosuid,nodev,size=${TMPFS_SIZES.tmp},mode=1777`,
  "--tmpfs", `${CONTAINER_HOME}:rw,exec,nosuid,nodev,size=${TMPFS_SIZES.home},mode=0700,uid=${uid},gid=${gid}`,
  "--tmpfs", `/run:rw,noexec,nosuid,nodev,size=${TMPFS_SIZES.run},mode=0755`,
  "--user", `${uid}:${gid}`, "-e", `HOME=${CONTAINER_HOME}`,
  "--mount", `type=bind,source=${tmp},target=/work`, "-w", "/work",
];

/**
 * The docker CLI equivalent of sandbox's whole body in an empty workspace:
 * the options above plus what `--dry-run` shows beyond them (the guard's
 * read-only stand-ins for protected paths that do not exist, the image's
 * accounts as /etc/passwd and /etc/group, every tmpfs). The stand-ins are
 * made once beforehand (sandbox makes and removes them on each run: that is
 * its own work, and counted).
 */
async function wholeBodyOptions(): Promise<string[]> {
  const ws = join(tmp, "whole");
  mkdirSync(ws);
  const dry = JSON.parse(await $`${BIN} run --dry-run --image ${IMAGE} true`.cwd(ws).quiet().text()) as {
    create: { HostConfig: { Mounts: Array<{ Source: string; Target: string; ReadOnly?: boolean }>; Tmpfs?: Record<string, string> } };
  };
  const options: string[] = [];
  for (let i = 0; i < dockerSecurity.length; i++) {
    const arg = dockerSecurity[i] as string;
    if (arg === "--tmpfs" || arg === "--mount") i++;
    else options.push(arg);
  }
  for (const [target, flags] of Object.entries(dry.create.HostConfig.Tmpfs ?? {})) options.push("--tmpfs", `${target}:${flags.replace(/uid=\d+,gid=\d+/, `uid=${uid},gid=${gid}`)}`);
  for (const m of dry.create.HostConfig.Mounts) {
    const source = m.Target === "/work" ? ws : m.Source;
    // A stand-in, made as the guard makes it (core/workspace-guard.ts).
    if (source.startsWith(`${ws}/`)) {
      if (DEFAULT_STAND_INS[source.slice(ws.length + 1)] === "file") writeFileSync(source, "");
      else mkdirSync(source, { recursive: true });
    }
    options.push("--mount", `type=bind,source=${source},target=${m.Target}${m.ReadOnly ? ",readonly" : ""}`);
  }
  return options;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timed(argv: string[], opts: { stdin?: string; env?: Record<string, string>; cwd?: string; quietStderr?: boolean } = {}): Promise<{ ms: number; rssKb: number; code: number }> {
  const rssFile = join(tmp, "rss");
  const start = performance.now();
  const proc = Bun.spawn(["/usr/bin/time", "-o", rssFile, "-f", "%M", ...argv], {
    cwd: opts.cwd ?? tmp,
    stdin: opts.stdin ? Bun.file(opts.stdin) : "ignore",
    stdout: "ignore",
    stderr: opts.quietStderr ? "ignore" : "inherit",
    env: { ...process.env, ...opts.env },
  });
  const code = await proc.exited;
  const ms = performance.now() - start;
  const rssKb = Number((await Bun.file(rssFile).text()).trim().split("\n").pop());
  return { ms, rssKb, code };
}

function row(label: string, value: string): void {
  console.log(`${label.padEnd(46)} ${value}`);
}

console.log(`sandbox bench: image ${IMAGE}, ${RUNS} runs, ${PIPE_MB} MiB pipe x${PIPE_RUNS}`);

// Warm both paths once so the first measured run is not an outlier.
await timed([BIN, "run", "--quiet", "--image", IMAGE, "true"]);
await timed(["docker", "run", "--rm", ...dockerSecurity, IMAGE, "true"]);

const dockerWhole = await wholeBodyOptions();
await timed(["docker", "run", "--rm", ...dockerWhole, IMAGE, "true"]);
const FLOOR = join(tmp, "bench-floor");
await compile(undefined, FLOOR, undefined, join(ROOT, "scripts/bench-floor.ts"));
await timed([FLOOR, IMAGE]);
const sandboxTimes: number[] = [];
const dockerTimes: number[] = [];
const dockerWholeTimes: number[] = [];
const floorTimes: number[] = [];
const plainTimes: number[] = [];
for (let i = 0; i < RUNS; i++) {
  sandboxTimes.push((await timed([BIN, "run", "--quiet", "--image", IMAGE, "true"])).ms);
  dockerTimes.push((await timed(["docker", "run", "--rm", ...dockerSecurity, IMAGE, "true"])).ms);
  dockerWholeTimes.push((await timed(["docker", "run", "--rm", ...dockerWhole, IMAGE, "true"])).ms);
  const floor = await timed([FLOOR, IMAGE]);
  if (floor.code !== 0) throw new Error(`bench-floor exited ${floor.code}`);
  floorTimes.push(floor.ms);
  plainTimes.push((await timed(["docker", "run", "--rm", IMAGE, "true"])).ms);
}
const sMed = median(sandboxTimes);
const dMed = median(dockerTimes);
const wMed = median(dockerWholeTimes);
row("run true: sandbox median", `${sMed.toFixed(0)} ms`);
row("run true: docker run --rm median", `${dMed.toFixed(0)} ms`);
row("run true: ratio sandbox/docker (target <= 1.0)", (sMed / dMed).toFixed(2));
row("run true: docker run, sandbox's whole body, median", `${wMed.toFixed(0)} ms (the guard's ${dockerWhole.filter((a) => a === "--mount").length - 1} more mounts)`);
row("run true: ratio sandbox/docker, same body", (sMed / wMed).toFixed(2));
const fMed = median(floorTimes);
const pMed = median(plainTimes);
row("run true: floor (scripts/bench-floor.ts) median", `${fMed.toFixed(0)} ms; plain docker run --rm ${pMed.toFixed(0)} ms`);
row("run true: ratio floor/plain docker", `${(fMed / pMed).toFixed(2)} (the runtime and docker-modem alone, no attach: a lower bound)`);

const versions: number[] = [];
for (let i = 0; i < 20; i++) versions.push((await timed([BIN, "--version"])).ms);
row("dist/sandbox --version median (target < 50 ms)", `${median(versions).toFixed(1)} ms`);

const blob = join(tmp, "blob.bin");
await $`head -c ${PIPE_MB * 1024 * 1024} /dev/urandom > ${blob}`.quiet();
const sp: Array<{ ms: number; rssKb: number }> = [];
const dp: Array<{ ms: number; rssKb: number }> = [];
for (let i = 0; i < PIPE_RUNS; i++) {
  sp.push(await timed([BIN, "run", "--quiet", "--image", IMAGE, "cat"], { stdin: blob }));
  dp.push(await timed(["docker", "run", "-i", "--rm", ...dockerSecurity, IMAGE, "cat"], { stdin: blob }));
}
const spMs = median(sp.map((r) => r.ms));
const dpMs = median(dp.map((r) => r.ms));
row(`pipe ${PIPE_MB} MiB: sandbox median`, `${(spMs / 1000).toFixed(2)} s, peak ${(Math.max(...sp.map((r) => r.rssKb)) / 1024).toFixed(1)} MiB`);
row(`pipe ${PIPE_MB} MiB: docker run -i median`, `${(dpMs / 1000).toFixed(2)} s, peak ${(Math.max(...dp.map((r) => r.rssKb)) / 1024).toFixed(1)} MiB`);
row("pipe: time ratio sandbox/docker (target <= 1.0)", (spMs / dpMs).toFixed(2));
row("pipe: sandbox peak memory (target <= 64 MiB)", `${(Math.max(...sp.map((r) => r.rssKb)) / 1024).toFixed(1)} MiB`);

// The guard on a big tree: 100 files per folder, a git repository at the top.
const tree = join(tmp, "tree");
for (let d = 0; d * 100 < TREE_FILES; d++) {
  const dir = join(tree, `src/d${d}`);
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < 100 && d * 100 + f < TREE_FILES; f++) writeFileSync(join(dir, `f${f}.ts`), "export {};\n");
}
await $`git init -q ${tree}`.quiet();
const quarantine: number[] = [];
const setid: number[] = [];
for (let i = 0; i < 5; i++) {
  let t = performance.now();
  await quarantineNewRepositories(tree, { before: ["."], masked: [], truncated: false, startedMs: Date.now() });
  quarantine.push(performance.now() - t);
  t = performance.now();
  await clearNewSetIdBits(tree, Date.now());
  setid.push(performance.now() - t);
}
row(`guard, ${TREE_FILES} files: new-repository check median`, `${median(quarantine).toFixed(0)} ms`);
row(`guard, ${TREE_FILES} files: setuid/setgid check median`, `${median(setid).toFixed(0)} ms (only when the user may be root)`);
const inTree: number[] = [];
const inEmpty: number[] = [];
const empty = join(tmp, "empty");
mkdirSync(empty);
for (let i = 0; i < Math.min(RUNS, 5); i++) {
  inTree.push((await timed([BIN, "run", "--quiet", "--image", IMAGE, "--workspace", tree, "true"])).ms);
  inEmpty.push((await timed([BIN, "run", "--quiet", "--image", IMAGE, "--workspace", empty, "true"])).ms);
}
row(`guard, ${TREE_FILES} files: run true there median`, `${median(inTree).toFixed(0)} ms (empty folder: ${median(inEmpty).toFixed(0)} ms)`);

// Review mode on the same tree: the overlay is one more mount, so start-up should not grow with the tree
// (target within 5 % of bind); copy mode sends the whole tree in. Change sets go to a state folder of the bench's own.
const reviewEnv = { XDG_STATE_HOME: join(tmp, "state") };
const byMode: Record<"bind" | "review" | "copy", number[]> = { bind: [], review: [], copy: [] };
for (let i = 0; i < Math.min(RUNS, 5); i++) {
  for (const mode of ["bind", "review", "copy"] as const) {
    const r = await timed([BIN, "run", "--quiet", "--image", IMAGE, "--workspace", tree, "--workspace-mode", mode, "true"], { env: reviewEnv });
    if (r.code !== 0) throw new Error(`run --workspace-mode ${mode} true exited ${r.code}`);
    byMode[mode].push(r.ms);
  }
}
const bindMs = median(byMode.bind);
row(`review, ${TREE_FILES} files: run true, bind mode median`, `${bindMs.toFixed(0)} ms`);
row(`review, ${TREE_FILES} files: run true, review mode median`, `${median(byMode.review).toFixed(0)} ms (review/bind ${(median(byMode.review) / bindMs).toFixed(2)}, target <= 1.05)`);
row(`review, ${TREE_FILES} files: run true, copy mode median`, `${median(byMode.copy).toFixed(0)} ms (copy/bind ${(median(byMode.copy) / bindMs).toFixed(2)})`);
// As root, bind mode walks the tree for new setuid/setgid bits after the run and review mode leaves that to apply:
// the same pair as a user that cannot set them shows the overlay's own cost.
const asUser: Record<"bind" | "review", number[]> = { bind: [], review: [] };
for (let i = 0; i < Math.min(RUNS, 5); i++) {
  for (const mode of ["bind", "review"] as const) {
    const r = await timed([BIN, "run", "--quiet", "--image", IMAGE, "--user", "1000:1000", "--workspace", tree, "--workspace-mode", mode, "true"], { env: reviewEnv });
    if (r.code !== 0) throw new Error(`run --user 1000:1000 --workspace-mode ${mode} true exited ${r.code}`);
    asUser[mode].push(r.ms);
  }
}
row(`review, ${TREE_FILES} files, --user 1000:1000: bind median`, `${median(asUser.bind).toFixed(0)} ms`);
row(`review, ${TREE_FILES} files, --user 1000:1000: review median`, `${median(asUser.review).toFixed(0)} ms (review/bind ${(median(asUser.review) / median(asUser.bind)).toFixed(2)}, target <= 1.05)`);

// sandbox apply of APPLY_FILES changed files (100 a folder): a fresh change set each time, the workspace reset before the run.
const applyWs = join(tmp, "apply");
const resetApplyWs = () => {
  for (let f = 0; f < APPLY_FILES; f++) {
    mkdirSync(join(applyWs, `d${Math.floor(f / 100)}`), { recursive: true });
    writeFileSync(join(applyWs, `d${Math.floor(f / 100)}/f${f}.txt`), "original\n");
  }
};
const applyTimes: number[] = [];
for (let i = 0; i < Math.min(RUNS, 5); i++) {
  resetApplyWs();
  const ran = await timed([BIN, "run", "--quiet", "--image", IMAGE, "--workspace", applyWs, "--workspace-mode", "review", "sh", "-c", "for f in d*/f*.txt; do echo changed >> \"$f\"; done"], { env: reviewEnv, quietStderr: true });
  if (ran.code !== 0) throw new Error(`the review run for apply exited ${ran.code}`);
  const listed = JSON.parse(await $`${BIN} changes --json`.env({ ...process.env, ...reviewEnv }).text()) as Array<{ id: string; changes: number }>;
  const set = listed[0];
  if (!set || set.changes !== APPLY_FILES) throw new Error(`expected one change set of ${APPLY_FILES} changes, got ${JSON.stringify(listed.map((s) => s.changes))}`);
  const applied = await timed([BIN, "apply", set.id], { env: reviewEnv, cwd: applyWs, quietStderr: true });
  if (applied.code !== 0) throw new Error(`sandbox apply exited ${applied.code}`);
  applyTimes.push(applied.ms);
}
row(`review: sandbox apply of ${APPLY_FILES} changed files median`, `${median(applyTimes).toFixed(0)} ms`);

rmSync(tmp, { recursive: true, force: true });
