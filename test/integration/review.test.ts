/**
 * Review mode (issue #17, docs/review.md): the command's writes go to a
 * change set (an overlay's upper layer the engine mounts), the workspace is
 * untouched until `sandbox apply`, which refuses git's config, setuid files
 * and links out, and leaves conflicts alone. On Docker and on Podman
 * (DOCKER_HOST / SANDBOX_TEST_ENGINE select the engine).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { inspectContainer } from "../../src/engine/containers.ts";
import { testEngine } from "../helpers/engine.ts";
import { cleanEnv, ENGINE_SOCKET, IS_PODMAN, runSandbox, sandboxArgv } from "../helpers/sandbox.ts";
import { until } from "../helpers/until.ts";
import { keptSets, REVIEW_RUN, reviewRoot, reviewWorkspace } from "../helpers/review.ts";

const root = reviewRoot("sandbox-review-");
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SLOW = 120_000;
const run = REVIEW_RUN;
const setup = (files: Record<string, string> = {}) => reviewWorkspace(root, files);

type Tree = Record<string, string>;
/** Every entry under dir: kind, mode and content (files) or target (links). */
function tree(dir: string, rel = ""): Tree {
  const out: Tree = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, path));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[path] = `dir ${mode}`;
      Object.assign(out, tree(dir, path));
    } else if (st.isSymbolicLink()) out[path] = `link ${readlinkSync(join(dir, path))}`;
    else out[path] = `file ${mode} ${readFileSync(join(dir, path), "utf8").replace(/\n/g, "|")}`;
  }
  return out;
}

/** The same listing made inside the container by busybox: what the command saw at the end. */
const LIST = `cd /work/p && find . -mindepth 1 | sort | while read -r f; do f=\${f#./}; if [ -L "$f" ]; then echo "$f=link $(readlink "$f")"; elif [ -d "$f" ]; then echo "$f=dir $(stat -c %a "$f")"; else echo "$f=file $(stat -c %a "$f") $(tr '\\n' '|' < "$f")"; fi; done`;
function parseList(text: string): Tree {
  const out: Tree = {};
  for (const line of text.split("\n").filter(Boolean)) {
    const eq = line.indexOf("=");
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const changes = keptSets;

/** The host's git in `ws`, made a repository (branch main) with a committer: returns git's stdout, throws on failure. */
function hostGit(ws: string): (...args: string[]) => string {
  const gitIn = (...args: string[]) => {
    const r = spawnSync("git", args, { cwd: ws, encoding: "utf8", env: cleanEnv() });
    if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  gitIn("init", "-q", "-b", "main");
  gitIn("config", "user.name", "Test");
  gitIn("config", "user.email", "test@example.invalid");
  return gitIn;
}

const EDIT = "printf 'one\\nTWO\\nthree\\n' > p/a.txt; rm p/gone.txt; echo new > p/new.txt; mkdir -p p/d/e; echo deep > p/d/e/f; rm -r p/old; chmod 755 p/run.sh; ln -s a.txt p/link; mv p/mv.txt p/d/moved.txt";

describe("review mode", () => {
  test(
    "edits, additions and deletions leave the workspace byte for byte as it was; apply then gives exactly the container's view",
    async () => {
      const { ws, env } = setup({ "a.txt": "one\ntwo\nthree\n", "gone.txt": "bye\n", "old/x": "x\n", "old/y/z": "z\n", "run.sh": "#!/bin/sh\n", "keep.txt": "same\n", "mv.txt": "to move\n" });
      const before = tree(ws);
      const r = await runSandbox([...run, "sh", "-c", `${EDIT}; ${LIST}`], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const seen = parseList(r.stdout.toString());
      expect(seen["a.txt"]).toBe("file 644 one|TWO|three|");
      expect(seen["link"]).toBe("link a.txt");
      expect(seen["old"]).toBeUndefined();
      // Nothing landed: no terminal, so the change set was kept.
      expect(tree(ws)).toEqual(before);
      expect(r.stderr).toContain("kept apart, in change set");
      expect(r.stderr).toMatch(/M p\/a\.txt\s+\| \+1 -1/);
      expect(r.stderr).toMatch(/D p\/gone\.txt\s+\| -1/);
      expect(r.stderr).toMatch(/R p\/mv\.txt -> p\/d\/moved\.txt\n/);
      expect(r.stderr).toContain("nothing was applied");
      const [set] = await changes(env);
      expect(set?.workspace).toBe(ws);
      expect(set?.command).toEqual(["sh", "-c", `${EDIT}; ${LIST}`]);

      const diff = await runSandbox(["diff", set!.id, "p/a.txt"], { cwd: ws, env });
      expect(diff.stdout.toString()).toBe("--- a/p/a.txt\n+++ b/p/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n");
      expect((await runSandbox(["diff", set!.id, "p/mv.txt"], { cwd: ws, env })).stdout.toString()).toBe("renamed p/mv.txt -> p/d/moved.txt\n");
      expect((await runSandbox(["diff", set!.id, "p/run.sh"], { cwd: ws, env })).stdout.toString()).toBe("old mode 644\nnew mode 755\nchanged p/run.sh (same lines; mode only)\n");

      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.stderr).not.toContain("not applied");
      expect(applied.code).toBe(0);
      expect(tree(join(ws, "p"))).toEqual(seen);
      expect(await changes(env)).toEqual([]);
    },
    SLOW,
  );

  test(
    "a folder removed and made again (an opaque folder in the overlay): its old entries are deletions, and apply leaves only the new ones",
    async () => {
      const { ws, env } = setup({ "old/x": "x\n", "old/y/z": "z\n", "other/keep": "k\n" });
      const r = await runSandbox([...run, "sh", "-c", `rm -r p/old && mkdir p/old && echo n > p/old/new && echo more >> p/other/keep; ${LIST}`], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const seen = parseList(r.stdout.toString());
      expect(seen["old/x"]).toBeUndefined();
      expect(r.stderr).toMatch(/D p\/old\/x\s/);
      expect(r.stderr).toMatch(/D p\/old\/y\/z\s/);
      const [set] = await changes(env);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(0);
      expect(tree(join(ws, "p"))).toEqual(seen);
    },
    SLOW,
  );

  test("refused when sandbox's state folder is inside the workspace (the change sets would be in the lower layer): exit 125, nothing made", async () => {
    const { ws } = setup({ "a.txt": "a\n" });
    const state = join(ws, "state");
    // Refused as any run is (cli/host-paths.ts), and in review mode also when allowed on purpose.
    const plain = await runSandbox([...run, "sh", "-c", "echo A > p/a.txt"], { cwd: ws, env: { XDG_STATE_HOME: state }, timeoutMs: SLOW });
    expect(plain.code).toBe(125);
    expect(plain.stderr).toContain("it is the folder that holds sandbox's own state");
    const r = await runSandbox([...run, "--allow-dangerous-workspace", "sh", "-c", "echo A > p/a.txt"], { cwd: ws, env: { XDG_STATE_HOME: state }, timeoutMs: SLOW });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("which is inside the workspace");
    expect(r.stderr).toContain("XDG_STATE_HOME");
    expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("a\n");
    expect(existsSync(join(state, "sandbox", "changes"))).toBe(false);
  });

  test(
    "apply PATH applies that path alone; the rest stays in the change set",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n", "b.txt": "b\n" });
      const r = await runSandbox([...run, "sh", "-c", "echo A > p/a.txt; echo B > p/b.txt; echo C > p/c.txt"], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const [set] = await changes(env);
      expect(set?.changes).toBe(3);
      const applied = await runSandbox(["apply", set!.id, "a.txt"], { cwd: join(ws, "p"), env });
      expect(applied.code).toBe(0);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("A\n");
      expect(readFileSync(join(ws, "p/b.txt"), "utf8")).toBe("b\n");
      expect(existsSync(join(ws, "p/c.txt"))).toBe(false);
      expect((await changes(env))[0]?.changes).toBe(2);
      expect((await runSandbox(["discard", set!.id], { env })).code).toBe(0);
      expect(await changes(env)).toEqual([]);
      expect(readFileSync(join(ws, "p/b.txt"), "utf8")).toBe("b\n");
    },
    SLOW,
  );

  test(
    "a file the host changed after the run is a conflict: left alone, listed, exit 1; --force applies it",
    async () => {
      const { ws, env } = setup({ "a.txt": "base\n", "b.txt": "b\n" });
      const r = await runSandbox([...run, "sh", "-c", "echo container > p/a.txt; echo B > p/b.txt"], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      writeFileSync(join(ws, "p/a.txt"), "host edit\n");
      const [set] = await changes(env);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(1);
      expect(applied.stderr).toContain("conflicts");
      expect(applied.stderr).toContain("p/a.txt: changed on the host since the run");
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("host edit\n");
      expect(readFileSync(join(ws, "p/b.txt"), "utf8")).toBe("B\n");
      const forced = await runSandbox(["apply", set!.id, "--force"], { cwd: ws, env });
      expect(forced.code).toBe(0);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("container\n");
    },
    SLOW,
  );

  test(
    "a file the host changed while the command ran is a conflict too",
    async () => {
      const { ws, env } = setup({ "a.txt": "base\n" });
      const running = runSandbox([...run, "sh", "-c", "echo container > p/a.txt; sleep 3"], { cwd: ws, env, timeoutMs: SLOW });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      writeFileSync(join(ws, "p/a.txt"), "host during\n");
      const r = await running;
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("conflict: changed on the host while the command ran");
      const [set] = await changes(env);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(1);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("host during\n");
    },
    SLOW,
  );

  test(
    "git's config and hooks in a repository made during the run, setuid files and links out are refused; git's objects and HEAD are applied",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const script = [
        "mkdir -p p/r/.git/hooks p/r/.git/objects/ab",
        "echo '[core] fsmonitor = touch /tmp/pwned' > p/r/.git/config",
        "echo 'ref: refs/heads/main' > p/r/.git/HEAD",
        "echo x > p/r/.git/objects/ab/cd",
        "printf '#!/bin/sh\\n' > p/r/.git/hooks/post-checkout",
        "echo s > p/suid; chmod 4755 p/suid",
        "ln -s /etc/passwd p/out",
      ].join("; ");
      const r = await runSandbox([...run, "sh", "-c", script], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/p\/r\/\.git\/config.*refused: inside git's folder/);
      const [set] = await changes(env);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.code).toBe(1);
      expect(applied.stderr).toContain("not applied, refused (5)"); // config, hooks/, hooks/post-checkout, suid, out
      expect(existsSync(join(ws, "p/r/.git/config"))).toBe(false);
      expect(existsSync(join(ws, "p/r/.git/hooks/post-checkout"))).toBe(false);
      expect(existsSync(join(ws, "p/suid"))).toBe(false);
      expect(existsSync(join(ws, "p/out"))).toBe(false);
      expect(readFileSync(join(ws, "p/r/.git/HEAD"), "utf8")).toBe("ref: refs/heads/main\n");
      expect(readFileSync(join(ws, "p/r/.git/objects/ab/cd"), "utf8")).toBe("x\n");
    },
    SLOW,
  );

  test(
    "apply --commit -m commits exactly the applied paths with the host's git; other staged work stays staged; refused without -m or outside a repository",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n", "gone.txt": "bye\n", "mv.txt": "to move\n", "other.txt": "o\n" });
      const gitIn = hostGit(ws);
      writeFileSync(join(ws, ".gitignore"), "*.log\n");
      gitIn("add", "-A");
      gitIn("commit", "-q", "-m", "base");
      // The user's own staged work, which the commit must leave alone.
      writeFileSync(join(ws, "p/other.txt"), "staged by the user\n");
      gitIn("add", "p/other.txt");
      // The repository's hooks are not run by the commit nor by its git add (a hook folder may hold what the command wrote).
      for (const hook of ["pre-commit", "post-commit", "post-index-change"]) writeFileSync(join(ws, ".git/hooks", hook), `#!/bin/sh\ntouch "${ws}/${hook}-ran"\n`, { mode: 0o755 });
      const r = await runSandbox([...run, "sh", "-c", "echo A > p/a.txt; rm p/gone.txt; echo n > p/new.txt; mv p/mv.txt p/moved.txt; echo x > p/build.log"], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const [set] = await changes(env);

      const noMessage = await runSandbox(["apply", set!.id, "--commit"], { cwd: ws, env });
      expect(noMessage.code).toBe(125);
      expect(noMessage.stderr).toContain("needs a commit message (-m MSG)");
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("a\n");

      const applied = await runSandbox(["apply", set!.id, "--commit", "-m", "the agent's work"], { cwd: ws, env });
      expect(applied.stderr).toContain("committed 5 path(s)");
      expect(applied.stderr).toContain("not committed, ignored by git: p/build.log");
      expect(applied.code).toBe(0);
      expect(gitIn("log", "-1", "--format=%s")).toBe("the agent's work\n");
      expect(gitIn("show", "--name-status", "--format=", "--no-renames", "HEAD").split("\n").filter(Boolean).sort()).toEqual(["A\tp/moved.txt", "A\tp/new.txt", "D\tp/gone.txt", "D\tp/mv.txt", "M\tp/a.txt"]);
      expect(gitIn("diff", "--cached", "--name-only")).toBe("p/other.txt\n");
      expect(readFileSync(join(ws, "p/build.log"), "utf8")).toBe("x\n");
      expect(readdirSync(ws).filter((name) => name.endsWith("-ran"))).toEqual([]);

      // Not a repository: refused before anything is applied.
      const plain = setup({ "a.txt": "a\n" });
      expect((await runSandbox([...run, "sh", "-c", "echo A > p/a.txt"], { cwd: plain.ws, env: plain.env, timeoutMs: SLOW })).code).toBe(0);
      const [other] = await changes(plain.env);
      const outside = await runSandbox(["apply", other!.id, "--commit", "-m", "x"], { cwd: plain.ws, env: plain.env });
      expect(outside.code).toBe(125);
      expect(outside.stderr).toContain("is not in a git working tree");
      expect(readFileSync(join(plain.ws, "p/a.txt"), "utf8")).toBe("a\n");
    },
    SLOW,
  );

  test(
    "refs packed inside (git gc, git pack-refs) are applied with the loose refs' removal: the host's git keeps every branch",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const gitIn = hostGit(ws);
      gitIn("add", "-A");
      gitIn("commit", "-q", "-m", "base");
      gitIn("branch", "feature");
      const sha = gitIn("rev-parse", "feature").trim();
      // What git pack-refs does (the image has no git): the refs into packed-refs, the loose files removed.
      const pack = `printf '# pack-refs with: peeled fully-peeled sorted \\n%s refs/heads/feature\\n%s refs/heads/main\\n' ${sha} ${sha} > .git/packed-refs && rm .git/refs/heads/feature .git/refs/heads/main`;
      const r = await runSandbox([...run, "sh", "-c", pack], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.code).toBe(0);
      const [set] = await changes(env);
      const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(applied.stderr).not.toContain("refused");
      expect(applied.code).toBe(0);
      expect(existsSync(join(ws, ".git/refs/heads/feature"))).toBe(false);
      expect(gitIn("rev-parse", "--verify", "refs/heads/feature").trim()).toBe(sha);
      expect(gitIn("branch", "--format=%(refname:short)").split("\n").filter(Boolean).sort()).toEqual(["feature", "main"]);
    },
    SLOW,
  );

  test(
    "prune removes kept change sets only with --older-than, asks first (or --force), lists them with --dry-run, and never one being applied",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      expect((await runSandbox([...run, "sh", "-c", "echo A > p/a.txt"], { cwd: ws, env, timeoutMs: SLOW })).code).toBe(0);
      const [set] = await changes(env);
      const dir = join(env.XDG_STATE_HOME!, "sandbox/changes", set!.id);
      expect(existsSync(dir)).toBe(true);
      // Scoped to this workspace: nobody else's containers or change sets are touched.
      const prune = (...args: string[]) => runSandbox(["prune", "--workspace", ws, ...args], { env });
      type Report = { changeSets: Array<{ id: string; outcome: string }>; changeSetsKept: Array<{ id: string; reason: string }> };
      const unbounded = JSON.parse((await prune("--dry-run", "--json")).stdout.toString()) as Report;
      expect(unbounded.changeSets).toEqual([]);
      expect(unbounded.changeSetsKept[0]?.reason).toContain("only with --older-than");
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const dry = await prune("--older-than", "1s", "--dry-run");
      expect(dry.code).toBe(0);
      expect(dry.stdout.toString()).toContain(`would remove: change set ${set!.id}  (${ws}, 1 change(s), `);
      const unasked = await prune("--older-than", "1s");
      expect(unasked.code).toBe(125);
      expect(unasked.stderr).toContain("there is no terminal to ask on");

      // An apply holds the lock (here: this live test process): prune leaves the change set, and a second apply waits its turn.
      writeFileSync(join(dir, "lock"), `${process.pid}\n`);
      const busy = JSON.parse((await prune("--older-than", "1s", "--force", "--json")).stdout.toString()) as Report;
      expect(busy.changeSets).toEqual([]);
      expect(busy.changeSetsKept).toEqual([{ id: set!.id, reason: "being applied" }]);
      const second = await runSandbox(["apply", set!.id], { cwd: ws, env });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`is in use by process ${process.pid}`);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("a\n");
      rmSync(join(dir, "lock"));

      // On a terminal: it says whose change sets go, and asks.
      const q = (t: string) => `'${t.replace(/'/g, `'\\''`)}'`;
      const line = `${[...sandboxArgv(), "prune", "--workspace", ws, "--older-than", "1s"].map(q).join(" ")}; echo "exit=$?"`;
      const asked = spawnSync("script", ["-qec", line, "/dev/null"], { cwd: ws, input: "n\n", env: cleanEnv({ TERM: "xterm", ...env }), encoding: "utf8", timeout: 60_000 }).stdout;
      expect(asked).toContain(`1 kept change set(s) of ${ws} (not applied: their changes are lost)`);
      expect(asked).toMatch(/Remove 1 change set\(s\) \([0-9.]+[KMG]?i?B\)\? \[y\/N\]/);
      expect(asked).toContain("exit=1");
      expect(existsSync(dir)).toBe(true);

      const removed = await prune("--older-than", "1s", "--force");
      expect(removed.code).toBe(0);
      expect(removed.stdout.toString()).toContain(`removed: change set ${set!.id}`);
      expect(existsSync(dir)).toBe(false);
      expect(await changes(env)).toEqual([]);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("a\n");
    },
    SLOW,
  );

  test(
    "the guard holds on top of the overlay: masked files read empty, .git/config is read-only",
    async () => {
      const { ws, env } = setup({});
      writeFileSync(join(ws, ".env"), "SECRET=1\n");
      mkdirSync(join(ws, ".git/hooks"), { recursive: true });
      writeFileSync(join(ws, ".git/config"), "[core]\n");
      writeFileSync(join(ws, ".git/HEAD"), "ref: refs/heads/main\n");
      const before = tree(ws);
      const r = await runSandbox([...run, "sh", "-c", "cat .env; echo '[x]' > .git/config || echo refused"], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.stdout.toString()).toBe("refused\n");
      expect(tree(ws)).toEqual(before);
      expect(r.stderr).toContain("changed nothing");
      expect(await changes(env)).toEqual([]);
    },
    SLOW,
  );

  test(
    "two runs at once in one workspace never see each other's writes and keep separate change sets; the second applied after the first is in conflict with it",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      const children: ChildProcess[] = [];
      // Each writes, then waits (on its stdin) until both have written, then looks.
      const script = (me: string) => `echo ${me} > p/${me}.txt; echo ${me} > p/a.txt; read go; ls p | tr '\\n' ' '; cat p/a.txt`;
      const runs = ["one", "two"].map((me) => runSandbox([...run, "sh", "-c", script(me)], { cwd: ws, env, timeoutMs: SLOW, holdStdin: true, onSpawn: (c) => children.push(c) }));
      const uppers = join(env.XDG_STATE_HOME!, "sandbox/changes");
      const written = () => (existsSync(uppers) ? readdirSync(uppers).filter((id) => ["one", "two"].some((me) => existsSync(join(uppers, id, "upper/p", `${me}.txt`)))).length : 0);
      await until("both runs to write", () => written() === 2, 60_000);
      for (const child of children) child.stdin?.end("go\n");
      const [one, two] = await Promise.all(runs);
      expect([one?.code, two?.code]).toEqual([0, 0]);
      expect(one?.stdout.toString()).toBe("a.txt one.txt one\n");
      expect(two?.stdout.toString()).toBe("a.txt two.txt two\n");
      expect(readdirSync(join(ws, "p"))).toEqual(["a.txt"]);
      const sets = await changes(env);
      expect(sets.length).toBe(2);
      const first = sets.find((s) => s.command.join(" ").includes("one.txt"))!;
      const second = sets.find((s) => s.command.join(" ").includes("two.txt"))!;
      expect((await runSandbox(["apply", first.id], { cwd: ws, env })).code).toBe(0);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("one\n");
      const late = await runSandbox(["apply", second.id], { cwd: ws, env });
      expect(late.code).toBe(1);
      expect(late.stderr).toContain("p/a.txt: changed on the host since the run");
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("one\n");
      expect(readFileSync(join(ws, "p/two.txt"), "utf8")).toBe("two\n");
      expect((await changes(env)).map((s) => [s.id, s.changes])).toEqual([[second.id, 1]]);
    },
    SLOW,
  );

  test(
    "a change set survives a kill -9 of sandbox: the watchdog stops the container and lists the changes, which apply later",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n", "gone.txt": "g\n" });
      // p/ alone: the guard's mountpoints (.claude, .github, ...) made for the run are left in the workspace by a killed sandbox until the next run there (docs/guard.md).
      const before = tree(join(ws, "p"));
      const name = `sandbox-review-kill-${randomBytes(4).toString("hex")}`;
      let child: ChildProcess | undefined;
      const running = runSandbox([...run, "--name", name, "sh", "-c", "echo A > p/a.txt; rm p/gone.txt; echo n > p/new.txt; sleep 300"], { cwd: ws, env, timeoutMs: SLOW, onSpawn: (c) => (child = c) });
      const changesDir = join(env.XDG_STATE_HOME!, "sandbox/changes");
      await until("the command to write", () => existsSync(changesDir) && readdirSync(changesDir).some((id) => existsSync(join(changesDir, id, "upper/p/new.txt"))), 60_000);
      child?.kill("SIGKILL");
      expect((await running).signal).toBe("SIGKILL");
      const engine = await testEngine();
      await until("the watchdog to remove the container", async () => (await inspectContainer(engine, name)) === undefined, 30_000, 250);
      const listed = await until("the watchdog to list the changes", async () => (await changes(env)).find((s) => s.changes === 3), 30_000, 250);
      expect((listed as { interrupted?: boolean }).interrupted).toBe(true);
      expect(tree(join(ws, "p"))).toEqual(before);
      const diff = await runSandbox(["diff", listed.id, "--stat"], { cwd: ws, env });
      expect(diff.stdout.toString()).toContain("3 file(s): 1 added, 1 changed, 1 deleted");
      const applied = await runSandbox(["apply", listed.id], { cwd: ws, env });
      expect(applied.code).toBe(0);
      expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("A\n");
      expect(readFileSync(join(ws, "p/new.txt"), "utf8")).toBe("n\n");
      expect(existsSync(join(ws, "p/gone.txt"))).toBe(false);
      expect(await changes(env)).toEqual([]);
    },
    SLOW,
  );

  test(
    "the command's user owns what it makes; the overlay's top folder is writable to a non-root user",
    async () => {
      const { ws, env } = setup({ "a.txt": "a\n" });
      chmodSync(ws, 0o777);
      const r = await runSandbox([...run, "--user", "1000:1000", "sh", "-c", "echo top > top.txt && stat -c %u top.txt"], { cwd: ws, env, timeoutMs: SLOW });
      expect(r.stdout.toString()).toBe("1000\n");
      expect(r.code).toBe(0);
      expect(existsSync(join(ws, "top.txt"))).toBe(false);
    },
    SLOW,
  );

  describe("on a terminal it asks: apply all, pick, keep or discard", () => {
    const q = (t: string) => `'${t.replace(/'/g, `'\\''`)}'`;
    /** sandbox run in a pseudo-terminal (util-linux `script`), `answer` typed; --no-tty keeps stdin from the command. */
    function inPty(ws: string, env: Record<string, string>, answer: string, command = "echo changed > p/a.txt"): string {
      const line = `${sandboxArgv().map(q).join(" ")} ${[...run, "--no-tty", "sh", "-c", command].map(q).join(" ")}`;
      const r = spawnSync("script", ["-qec", line, "/dev/null"], { cwd: ws, input: answer, env: cleanEnv({ TERM: "xterm", ...env }), encoding: "utf8", timeout: 60_000 });
      return r.stdout.replace(/\r/g, "");
    }

    test.each([
      ["a\n", "changed\n", 0],
      ["d\n", "a\n", 0],
      ["k\n", "a\n", 1],
      ["\n", "a\n", 1],
    ] as const)(
      "answer %j: a.txt is then %j, %d change set(s) kept",
      async (answer, content, kept) => {
        const { ws, env } = setup({ "a.txt": "a\n" });
        const out = inPty(ws, env, answer);
        expect(out).toContain("Apply all (a), pick file by file (p), keep for later (k) or discard (d)? [a/p/K/d]");
        expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe(content);
        expect((await changes(env)).length).toBe(kept);
      },
      SLOW,
    );

    test(
      "answer p: each file is shown (a unified diff; a binary file by size and sha256) and asked; y applies it, n and q keep it for a later 'sandbox apply'",
      async () => {
        const { ws, env } = setup({ "a.txt": "a\n", "b.txt": "b\n" });
        const binary = Buffer.from([1, 0, 2]);
        writeFileSync(join(ws, "p/bin.dat"), binary);
        const out = inPty(ws, env, "p\ny\nn\nq\n", "echo changed > p/a.txt; echo B > p/b.txt; printf 'x\\000y\\033z' > p/bin.dat; echo C > p/c.txt");
        expect(out).toContain("(1/4) M p/a.txt\n--- a/p/a.txt\n+++ b/p/a.txt\n@@ -1,1 +1,1 @@\n-a\n+changed\n");
        expect(out).toContain("(2/4) M p/b.txt\n");
        expect(out).toContain("(3/4) M p/bin.dat\nBinary files a/p/bin.dat and b/p/bin.dat differ\n");
        // q: the rest is not asked about.
        expect(out).not.toContain("(4/4)");
        const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");
        expect(out).toContain(`before: 3 bytes, sha256 ${sha(binary)}\n`);
        expect(out).toContain(`after:  5 bytes, sha256 ${sha(Buffer.from("x\0y\x1bz", "latin1"))}\n`);
        // The file's bytes never reach the terminal.
        expect(out).not.toContain("\x1bz");
        expect(out.match(/Apply this change\? \[y\/n\/q\]/g)?.length).toBe(3);
        expect(readFileSync(join(ws, "p/a.txt"), "utf8")).toBe("changed\n");
        expect(readFileSync(join(ws, "p/b.txt"), "utf8")).toBe("b\n");
        expect(readFileSync(join(ws, "p/bin.dat"))).toEqual(binary);
        expect(existsSync(join(ws, "p/c.txt"))).toBe(false);
        expect(out).toContain("the rest is kept in change set");
        const [set, ...more] = await changes(env);
        expect(more).toEqual([]);
        expect(set?.changes).toBe(3);
        // sandbox diff shows a binary file the same way; --exit-code says whether there is a difference.
        const diff = await runSandbox(["diff", set!.id, "p/bin.dat", "--exit-code"], { cwd: ws, env });
        expect(diff.stdout.toString()).toBe(
          `Binary files a/p/bin.dat and b/p/bin.dat differ\n  before: 3 bytes, sha256 ${sha(binary)}\n  after:  5 bytes, sha256 ${sha(Buffer.from("x\0y\x1bz", "latin1"))}\n`,
        );
        expect(diff.code).toBe(1);
        expect((await runSandbox(["diff", set!.id, "p/a.txt", "--exit-code"], { cwd: ws, env })).code).toBe(0);
        const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
        expect(applied.code).toBe(0);
        expect(readFileSync(join(ws, "p/b.txt"), "utf8")).toBe("B\n");
        expect(readFileSync(join(ws, "p/bin.dat"), "latin1")).toBe("x\0y\x1bz");
        expect(readFileSync(join(ws, "p/c.txt"), "utf8")).toBe("C\n");
      },
      SLOW,
    );
  });

  // A remote Podman cannot take sandbox's seccomp profile (docs/engines.md): refused before review matters.
  test.skipIf(IS_PODMAN)(
    "an engine that cannot see this machine's files (tcp://): copied in, the changes copied into the change set, said so; apply gives the container's view",
    async () => {
      // The same engine behind a plain tcp:// relay: sandbox takes it for a remote one.
      const relay = net.createServer({ allowHalfOpen: true }, (client) => {
        const upstream = net.connect({ path: ENGINE_SOCKET, allowHalfOpen: true });
        client.pipe(upstream).pipe(client);
        client.on("error", () => upstream.destroy());
        upstream.on("error", () => client.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
      try {
        const port = (relay.address() as net.AddressInfo).port;
        const { ws, env } = setup({ "a.txt": "one\ntwo\nthree\n", "gone.txt": "bye\n", "old/x": "x\n", "old/y/z": "z\n", "run.sh": "#!/bin/sh\n", "keep.txt": "same\n", "mv.txt": "to move\n" });
        writeFileSync(join(ws, ".env"), "SECRET=1\n");
        const before = tree(ws);
        const remote = { ...env, DOCKER_HOST: `tcp://127.0.0.1:${port}` };
        const r = await runSandbox([...run, "sh", "-c", `cat .env; ${EDIT.replace("ln -s", "ln -sf")}; ${LIST}`], { cwd: ws, env: remote, timeoutMs: SLOW });
        expect(r.code).toBe(0);
        expect(r.stderr).toContain("cannot mount this machine's folder as an overlay, so the workspace is copied in");
        const seen = parseList(r.stdout.toString());
        expect(tree(ws)).toEqual(before);
        expect(r.stderr).toMatch(/R p\/mv\.txt -> p\/d\/moved\.txt\n/);
        const [set] = await changes(env);
        const applied = await runSandbox(["apply", set!.id], { cwd: ws, env });
        expect(applied.stderr).not.toContain("not applied");
        expect(applied.code).toBe(0);
        expect(tree(join(ws, "p"))).toEqual(seen);
        expect(readFileSync(join(ws, ".env"), "utf8")).toBe("SECRET=1\n");
      } finally {
        relay.close();
      }
    },
    SLOW,
  );
});
