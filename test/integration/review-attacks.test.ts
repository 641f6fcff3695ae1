/**
 * Review mode under attack (issue #17, docs/review.md): what a command in a
 * real container can put in its change set to make `sandbox apply` (and the
 * host's own git afterwards) do more than the user approved. Each test runs
 * the attack in a review-mode run and then watches the host: its files, and
 * what its git runs. On Docker and on Podman (DOCKER_HOST /
 * SANDBOX_TEST_ENGINE select the engine).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { spawnSync, type ChildProcess } from "node:child_process";
import { inspectContainer, removeContainer } from "../../src/engine/containers.ts";
import { WATCHDOG_COMMAND } from "../../src/cli/watchdog.ts";
import { testEngine } from "../helpers/engine.ts";
import { keptSets, REVIEW_RUN as run, reviewRoot, reviewWorkspace } from "../helpers/review.ts";
import { cleanEnv, runSandbox, sandboxArgv } from "../helpers/sandbox.ts";
import { until } from "../helpers/until.ts";

const root = reviewRoot("sandbox-review-attacks-");
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SLOW = 120_000;
const setup = (files: Record<string, string> = {}) => reviewWorkspace(root, files);

/** The host's git in `cwd`, never looking for a repository above the test's workspace. */
function hostGit(ws: string, cwd: string, ...args: string[]) {
  return spawnSync("git", args, { cwd, encoding: "utf8", env: cleanEnv({ GIT_CEILING_DIRECTORIES: dirname(ws), GIT_TERMINAL_PROMPT: "0" }) });
}

/**
 * A git config that runs `touch MARKER` on the host at the next `git fetch`
 * (core.sshCommand for an ssh:// remote; the "ssh" is the touch, so nothing
 * leaves this machine).
 */
function evilConfig(marker: string): string {
  return `[core]\n\tsshCommand = "touch ${marker}; false"\n[remote "origin"]\n\turl = ssh://nowhere.invalid/r\n`;
}

/** A heredoc that writes `text` to `path` inside the container. */
const writeFile = (path: string, text: string) => `cat > ${path} <<'SANDBOX_EOF'\n${text}SANDBOX_EOF\n`;

async function runAndApply(ws: string, env: Record<string, string>, script: string) {
  const r = await runSandbox([...run, "sh", "-c", script], { cwd: ws, env, timeoutMs: SLOW });
  expect(r.stderr).toContain("kept apart, in change set");
  expect(r.code).toBe(0);
  const [set] = await keptSets(env);
  const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
  return { run: r, applied, id: set!.id };
}

describe("review mode: git folders planted through the change set", () => {
  test(
    "a folder with HEAD and a commondir is a git folder (git takes config, objects and refs from the common one): nothing in it is applied, and the host's git runs nothing",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const marker = join(ws, "PWNED");
      const script = ["mkdir -p p/x p/y/objects p/y/refs", "echo 'ref: refs/heads/main' > p/x/HEAD", "echo ../y > p/x/commondir", writeFile("p/y/config", evilConfig(marker))].join("\n");
      const { run: r, applied } = await runAndApply(ws, env, script);
      expect(r.stderr).toMatch(/A p\/x\/commondir .*refused/);
      expect(applied.code).toBe(1);
      expect(existsSync(join(ws, "p/x/commondir"))).toBe(false);
      expect(existsSync(join(ws, "p/x/HEAD"))).toBe(false);
      // Where the host's git looks for a repository there, it finds none of the container's.
      hostGit(ws, existsSync(join(ws, "p/x")) ? join(ws, "p/x") : ws, "fetch", "origin");
      expect(existsSync(marker)).toBe(false);
    },
    SLOW,
  );

  test(
    "a bare repository of the host's, its objects removed and a commondir added to turn it over to a common folder the container wrote: the commondir never lands; the host's git runs nothing",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      expect(hostGit(ws, join(ws, "p"), "init", "-q", "--bare", "b").status).toBe(0);
      const marker = join(ws, "PWNED");
      const script = ["rm -rf p/b/objects", "echo ../evil > p/b/commondir", "mkdir -p p/evil/objects p/evil/refs", writeFile("p/evil/config", evilConfig(marker))].join("\n");
      await runAndApply(ws, env, script);
      // The guard keeps p/b's commondir read-only in the run; apply would refuse it (the host's view of p/b is a repository).
      expect(existsSync(join(ws, "p/b/commondir"))).toBe(false);
      hostGit(ws, join(ws, "p/b"), "fetch", "origin");
      expect(existsSync(marker)).toBe(false);
    },
    SLOW,
  );

  test(
    "the workspace's root made a bare repository (HEAD, objects/, refs/ and a config at the top): refused; the host's git there runs nothing",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const marker = join(ws, "p/PWNED");
      const script = ["mkdir -p objects refs", "echo 'ref: refs/heads/main' > HEAD", writeFile("config", evilConfig(marker))].join("\n");
      const { applied } = await runAndApply(ws, env, script);
      expect(applied.code).toBe(1);
      expect(existsSync(join(ws, "config"))).toBe(false);
      expect(existsSync(join(ws, "HEAD"))).toBe(false);
      hostGit(ws, join(ws, "p"), "fetch", "origin");
      expect(existsSync(marker)).toBe(false);
    },
    SLOW,
  );

  test(
    "a bare repository assembled over two change sets (the config first, in a folder that is not yet one; then HEAD): the second is refused; the host's git runs nothing",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const marker = join(ws, "PWNED");
      const first = await runAndApply(ws, env, ["mkdir -p p/y/objects p/y/refs", writeFile("p/y/config", evilConfig(marker))].join("\n"));
      // Not a git folder yet, in either view: an ordinary config file, applied.
      expect(first.applied.code).toBe(0);
      const second = await runAndApply(ws, env, "echo 'ref: refs/heads/main' > p/y/HEAD");
      expect(second.applied.code).toBe(1);
      expect(second.applied.stderr).toContain("p/y/HEAD: ");
      expect(existsSync(join(ws, "p/y/HEAD"))).toBe(false);
      hostGit(ws, join(ws, "p/y"), "fetch", "origin");
      expect(existsSync(marker)).toBe(false);
    },
    SLOW,
  );

  test(
    "a rename out of git's folder, or into a made repository's hooks, is refused on both sides: nothing is deleted or planted",
    async () => {
      const { ws, env } = setup({ "hook.sh": "#!/bin/sh\necho hook\n" });
      expect(hostGit(ws, ws, "init", "-q").status).toBe(0);
      const description = readFileSync(join(ws, ".git/description"), "utf8");
      const script = ["mv .git/description p/notes.txt", "mkdir -p p/r/.git/hooks", "mv p/hook.sh p/r/.git/hooks/pre-commit"].join("; ");
      const r = await runSandbox([...run, "sh", "-c", script], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/R \.git\/description -> p\/notes\.txt .*refused: moved from \.git\/description/);
      const [set] = await keptSets(env);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(1);
      expect(readFileSync(join(ws, ".git/description"), "utf8")).toBe(description);
      expect(existsSync(join(ws, "p/notes.txt"))).toBe(false);
      expect(existsSync(join(ws, "p/r/.git/hooks/pre-commit"))).toBe(false);
      expect(readFileSync(join(ws, "p/hook.sh"), "utf8")).toBe("#!/bin/sh\necho hook\n");
    },
    SLOW,
  );
});

describe("review mode: the host's symlinks", () => {
  test(
    "a folder that is a symlink out of the workspace on the host, made a folder with a file in it by the container: never written through; applying the folder too replaces the link",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const outside = join(root, `outside-${Date.now()}`);
      mkdirSync(outside);
      writeFileSync(join(outside, "y"), "the host's\n");
      symlinkSync(outside, join(ws, "p/lnk"));
      const r = await runSandbox([...run, "sh", "-c", "rm p/lnk && mkdir p/lnk && echo container > p/lnk/y && echo new > p/lnk/z"], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const [set] = await keptSets(env);
      const partial = await runSandbox(["apply", set!.id, "p/lnk/y", "p/lnk/z"], { cwd: ws, env });
      expect(partial.code).toBe(1);
      expect(partial.stderr).toContain("p/lnk is a symbolic link on the host: nothing is written through it");
      expect(readdirSync(outside)).toEqual(["y"]);
      expect(readFileSync(join(outside, "y"), "utf8")).toBe("the host's\n");
      const all = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(all.code).toBe(0);
      expect(lstatSync(join(ws, "p/lnk")).isDirectory()).toBe(true);
      expect(readFileSync(join(ws, "p/lnk/y"), "utf8")).toBe("container\n");
      expect(readdirSync(outside)).toEqual(["y"]);
      expect(readFileSync(join(outside, "y"), "utf8")).toBe("the host's\n");
    },
    SLOW,
  );
});

describe("review mode: names and link targets the container chose, on the user's terminal", () => {
  const ESC_NAME = "e\\033[31mx";
  // A link target that sets the window title and forges a line of sandbox's own.
  const TARGET = "/x\\033]0;TITLE\\007\\nsandbox: review: FORGED";
  const script = `echo c > "p/$(printf '${ESC_NAME}')"; ln -s "$(printf '${TARGET}')" p/l; printf 'one\\n\\033[2Jtwo\\n' > p/a.txt`;
  const forged = (text: string) => text.split("\n").some((line) => line.startsWith("sandbox: review: FORGED"));

  test(
    "the summary, 'sandbox diff' and 'sandbox apply' escape them: no escape sequence, bell or forged line reaches the terminal",
    async () => {
      const { ws, env } = setup({ "a.txt": "one\n" });
      const r = await runSandbox([...run, "sh", "-c", script], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("A p/e\\x1b[31mx");
      expect(r.stderr).toContain("A p/l");
      expect(r.stderr).not.toMatch(/[\x07\x1b]/);
      expect(forged(r.stderr)).toBe(false);
      const [set] = await keptSets(env);

      // To a pipe, file content stays as it is (a diff to save or apply); names and link targets never.
      const diff = (await runSandbox(["diff", set!.id, "p/l", "p/e\x1b[31mx"], { cwd: ws, env })).stdout.toString();
      expect(diff).toContain("+++ b/p/e\\x1b[31mx\n");
      expect(diff).toContain("link -> /x\\x1b]0;TITLE\\x07\\nsandbox: review: FORGED\n");
      expect(diff).not.toMatch(/[\x07\x1b]/);
      expect(forged(diff)).toBe(false);
      // On a terminal, the content is escaped too.
      const q = (t: string) => `'${t.replace(/'/g, `'\\''`)}'`;
      const onTerminal = spawnSync("script", ["-qec", [...sandboxArgv(), "diff", set!.id, "p/a.txt"].map(q).join(" "), "/dev/null"], {
        cwd: ws,
        env: cleanEnv({ TERM: "xterm", ...env }),
        encoding: "utf8",
        timeout: 60_000,
      }).stdout;
      expect(onTerminal).toContain("+\\x1b[2Jtwo");
      expect(onTerminal).not.toMatch(/[\x07\x1b]/);

      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(1);
      expect(applied.stderr).toContain("p/l: a symlink to /x\\x1b]0;TITLE\\x07\\nsandbox: review: FORGED, outside the workspace");
      expect(applied.stderr).not.toMatch(/[\x07\x1b]/);
      expect(forged(applied.stderr)).toBe(false);
      expect(existsSync(join(ws, "p/l"))).toBe(false);
    },
    SLOW,
  );
});

describe("review mode: apply --commit with names the container chose", () => {
  test(
    "names that look like git options or pathspec magic are committed as the files they are; git runs nothing else",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const gitIn = (...args: string[]) => {
        const r = hostGit(ws, ws, ...args);
        if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
        return r.stdout;
      };
      gitIn("init", "-q");
      gitIn("config", "user.name", "Test");
      gitIn("config", "user.email", "test@example.invalid");
      gitIn("add", "-A");
      gitIn("commit", "-q", "-m", "base");
      const marker = join(ws, "PWNED");
      // At the top, where git reads a leading `:` as pathspec magic; below p/ the rest.
      const names = [":(glob)*", ":!a.txt", ":(top)x", "p/--exec=touch PWNED", "p/-c core.hooksPath=x", "p/*", "p/line\nbreak"];
      const make = names.map((name, i) => `printf '%s' ${i} > "$(printf '%b' '${name.replace(/\n/g, "\\n")}')"`).join("; ");
      const r = await runSandbox([...run, "sh", "-c", `${make}; echo A > p/a.txt`], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const [set] = await keptSets(env);
      const applied = await runSandbox(["apply", set!.id, "--commit", "-m", "the agent's work"], { cwd: ws, env });
      expect(applied.stderr).toContain(`committed ${names.length + 1} path(s)`);
      expect(applied.code).toBe(0);
      const committed = gitIn("show", "--name-only", "--format=", "-z", "HEAD").split("\0").filter(Boolean).sort();
      expect(committed).toEqual([...names, "p/a.txt"].sort());
      for (const [i, name] of names.entries()) expect(readFileSync(join(ws, name), "utf8")).toBe(String(i));
      expect(existsSync(marker)).toBe(false);
      expect(gitIn("status", "--porcelain")).toBe("");
    },
    SLOW,
  );
});

describe("review mode: the change set's own files", () => {
  test(
    "files named lock, meta.json and deleted.json written by the command are workspace files, never the change set's",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const fake = JSON.stringify({ version: 1, id: "x", workspace: "/", command: ["fake"], startedMs: 0, changes: [{ path: "etc/passwd", action: "deleted", type: "file", base: null }] });
      const script = `echo 1 > lock; echo '${fake}' > meta.json; echo '["p/a.txt"]' > deleted.json; mkdir -p upper work; echo '${fake}' > upper/meta.json`;
      const r = await runSandbox([...run, "sh", "-c", script], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const [set, ...more] = await keptSets(env);
      expect(more).toEqual([]);
      expect(set?.workspace).toBe(ws);
      expect(set?.command).toEqual(["sh", "-c", script]);
      // lock, meta.json, deleted.json, upper/, upper/meta.json, work/: p/a.txt is not deleted.
      expect(set?.changes).toBe(6);
      const prune = JSON.parse((await runSandbox(["prune", "--workspace", ws, "--older-than", "0s", "--force", "--dry-run", "--json"], { env })).stdout.toString()) as {
        changeSetsKept: Array<{ id: string; reason: string }>;
      };
      expect(prune.changeSetsKept.filter((k) => k.reason === "being applied")).toEqual([]);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(0);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("a\n");
      expect(readFileSync(join(ws, "lock"), "utf8")).toBe("1\n");
      expect(JSON.parse(readFileSync(join(ws, "meta.json"), "utf8")).workspace).toBe("/");
    },
    SLOW,
  );
});

describe("review mode: a killed run whose container still runs", () => {
  test(
    "sandbox and its watchdog killed, the container runs on: a file listed in the change set and then swapped for a link to a host file is never copied through the link",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      mkdirSync(join(ws, "p/s"));
      const secret = join(root, `secret-${Date.now()}`);
      writeFileSync(secret, "the host's secret\n");
      const secretDir = `${secret}.d`;
      mkdirSync(secretDir);
      writeFileSync(join(secretDir, "g"), "the host's other secret\n");
      const name = `sandbox-review-swap-${Date.now().toString(36)}`;
      // Waits for the host's signal (a file it makes, read through the overlay's lower layer), then swaps p/f for a link, and the folder q for a link to a host folder.
      const script = `mkdir q; echo harmless > q/g; echo harmless > p/f; until ls p/s | grep -q go; do sleep 0.1; done; rm p/f; ln -s ${secret} p/f; rm -r q; ln -s ${secretDir} q; sleep 300`;
      let child: ChildProcess | undefined;
      const running = runSandbox([...run, "--name", name, "sh", "-c", script], { cwd: ws, env, timeoutMs: SLOW, onSpawn: (c) => (child = c) });
      const engine = await testEngine();
      try {
        const changesDir = join(env.XDG_STATE_HOME!, "sandbox/changes");
        const upper = await until("the command to write", () => existsSync(changesDir) && readdirSync(changesDir).map((id) => join(changesDir, id, "upper")).find((u) => existsSync(join(u, "p/f"))), 60_000);
        // The watchdog first (it would stop the container once sandbox is gone), then sandbox.
        const watchdog = await until("the run's watchdog", () => processesWith(WATCHDOG_COMMAND, name)[0], 30_000);
        process.kill(watchdog, "SIGKILL");
        child?.kill("SIGKILL");
        expect((await running).signal).toBe("SIGKILL");
        expect((await inspectContainer(engine, name))?.State?.Running).toBe(true);

        const [set] = await keptSets(env);
        // Listed now, as 'sandbox diff' lists a killed run's change set: p/f is a file.
        const listed = await runSandbox(["diff", set!.id, "--stat"], { cwd: ws, env });
        expect(listed.stdout.toString()).toMatch(/A p\/f\s+\| \+1/);
        writeFileSync(join(ws, "p/s/go"), "");
        // Between its rm and its ln a path is missing: until() reads that throw as "not yet".
        await until("the container to swap p/f and q for links", () => lstatSync(join(upper, "p/f")).isSymbolicLink() && lstatSync(join(upper, "q")).isSymbolicLink(), 30_000);

        const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
        expect(existsSync(join(ws, "p/f")) ? readFileSync(join(ws, "p/f"), "utf8") : "").not.toContain("secret");
        expect(existsSync(join(ws, "q/g")) ? readFileSync(join(ws, "q/g"), "utf8") : "").not.toContain("secret");
        expect(applied.stderr).toContain("not applied, failed (2)");
        expect(applied.code).toBe(1);
        expect(readdirSync(join(ws, "p")).filter((f) => f.startsWith(".sandbox-apply-"))).toEqual([]);
      } finally {
        await removeContainer(engine, name, { force: true, volumes: true }).catch(() => false);
      }
    },
    SLOW,
  );
});

/** Pids of this machine's processes whose command line holds every one of `words`. */
function processesWith(...words: string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (words.every((w) => args.includes(w))) found.push(Number(entry));
  }
  return found;
}

describe("review mode: the pick prompt", () => {
  const q = (t: string) => `'${t.replace(/'/g, `'\\''`)}'`;
  /** sandbox run in a pseudo-terminal (util-linux `script`), `typed` typed; --no-tty keeps stdin from the command. */
  function inPty(ws: string, env: Record<string, string>, typed: string, command: string): string {
    const line = `${sandboxArgv().map(q).join(" ")} ${[...run, "--no-tty", "sh", "-c", command].map(q).join(" ")}`;
    return spawnSync("script", ["-qec", line, "/dev/null"], { cwd: ws, input: typed, env: cleanEnv({ TERM: "xterm", ...env }), encoding: "utf8", timeout: 60_000 }).stdout.replace(/\r/g, "");
  }
  const command = "ln -s /etc/passwd p/a-out; echo B > p/b.txt; echo C > p/c.txt";

  test(
    "a refused change is shown, never asked: a 'y' typed for it answers the next question; end of input keeps the rest",
    async () => {
      const { ws, env } = setup({ "b.txt": "b\n", "c.txt": "c\n" });
      const out = inPty(ws, env, "p\ny\n", command);
      expect(out).toMatch(/\(1\/3\) A p\/a-out\n[^]*refused, kept in the change set: a symlink to \/etc\/passwd/);
      expect(out.match(/Apply this change\? \[y\/n\/q\]/g)?.length).toBe(2);
      expect(existsSync(join(ws, "p/a-out"))).toBe(false);
      expect(readFileSync(join(ws, "p/b.txt"), "utf8")).toBe("B\n");
      // The input ended at the question about c.txt: kept.
      expect(readFileSync(join(ws, "p/c.txt"), "utf8")).toBe("c\n");
      const [set, ...more] = await keptSets(env);
      expect(more).toEqual([]);
      expect(set?.changes).toBe(2);
    },
    SLOW,
  );
});
