/**
 * Attacks on the hidden login (docs/credentials.md, "Logins in the agent's
 * state"; core/state-credentials.ts): a command that wants the saved token
 * the cover hides, or wants sandbox's handling of the cover (the made file,
 * its removal, the stand-in) to act on something else of the host's. Each
 * is tried from inside a real container; what the host holds afterwards is
 * checked.
 *
 * From inside a hidden run (both engines, executeRun with a plan that hides
 * the login, as state-credentials.test.ts does): no way round the cover.
 * Through `sandbox run` on Docker (public mode with ANTHROPIC_API_KEY set:
 * no request is made, so no upstream is needed): odd things at the login
 * file's place, two runs at once, a run beside the hidden one that plants a
 * link where the made file is removed, and a planted stand-in.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentialStandIn } from "../../src/core/state-credentials.ts";
import { hiddenLoginSettings, runPlanDirect } from "../helpers/direct-run.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE, type RunResult } from "../helpers/sandbox.ts";

const root = mkdtempSync(join(tmpdir(), "sandbox-creds-attacks-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const MARK = `sk-ant-oat01-${randomBytes(8).toString("hex")}`;
const TOKEN = `{"claudeAiOauth":{"accessToken":"${MARK}"}}\n`;
const KEY = `sk-ant-test-${randomBytes(8).toString("hex")}`;

function lines(out: string): string[] {
  return out.trim().split("\n");
}

/**
 * Every way round the cover a command without capabilities has: a second
 * name for the file (a hard link), the mount table (umount, a new mount or
 * user namespace to umount in), moving the state folder or the file away,
 * another spelling of its name, and a search of everything it can read for
 * the token.
 */
const ESCAPES = [
  "cd ~/.claude || exit 9",
  'echo "content=[$(cat .credentials.json 2>&1)]"',
  "ln .credentials.json second 2>/dev/null && echo link=ok || echo link=refused",
  "umount .credentials.json 2>/dev/null && echo umount=ok || echo umount=refused",
  "umount -l .credentials.json 2>/dev/null && echo lazy-umount=ok || echo lazy-umount=refused",
  "unshare -m umount /home/sandbox/.claude/.credentials.json 2>/dev/null && echo mount-ns=ok || echo mount-ns=refused",
  "unshare -Urm umount /home/sandbox/.claude/.credentials.json 2>/dev/null && echo user-ns=ok || echo user-ns=refused",
  "mv ~/.claude ~/.claude-moved 2>/dev/null && echo move-state=ok || echo move-state=refused",
  "mv .credentials.json moved 2>/dev/null && echo move-file=ok || echo move-file=refused",
  'echo other > .CREDENTIALS.JSON && echo "other-case=[$(cat .CREDENTIALS.JSON)]"',
  `grep -rl "${MARK}" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null | sed 's/^/found=/'`,
  'echo "content-after=[$(cat .credentials.json 2>&1)]"',
].join("\n");

describe(`from inside a hidden run, on ${IS_PODMAN ? "Podman" : "Docker"}: no way round the cover`, () => {

  test("a hard link, umount (also in a new namespace), moving the folder or file, another case, a search: the token stays hidden and on the host as it was; a link at the stand-in's path is not followed", async () => {
    const base = mkdtempSync(join(root, "direct-"));
    const workspace = join(base, "work");
    const stateRoot = join(base, "state");
    const state = join(stateRoot, "agents", "claude", "work-0");
    mkdirSync(workspace, { recursive: true });
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, ".credentials.json"), TOKEN, { mode: 0o600 });
    const standIn = credentialStandIn(stateRoot);
    // Someone left a link at the stand-in's path: the cover is made afresh, never bound through it.
    const secret = join(base, "host-secret");
    writeFileSync(secret, "HOST-SECRET\n", { mode: 0o600 });
    mkdirSync(join(stateRoot, "stand-ins"), { recursive: true });
    symlinkSync(secret, standIn);
    const settings = hiddenLoginSettings(state, stateRoot);
    const run = await runPlanDirect(["sh", "-c", ESCAPES], settings, { workspace, stateDir: stateRoot });
    if (run.code !== 0) console.error(run.err);
    expect(run.code).toBe(0);
    const seen = lines(run.out);
    for (const line of ["content=[]", "link=refused", "umount=refused", "lazy-umount=refused", "mount-ns=refused", "user-ns=refused", "move-state=refused", "move-file=refused", "other-case=[other]", "content-after=[]"]) {
      expect(seen).toContain(line);
    }
    expect(seen.filter((line) => line.startsWith("found="))).toEqual([]);
    // On the host: the login as it was; the other spelling is a file of its own (this file system tells case apart).
    expect(readFileSync(join(state, ".credentials.json"), "utf8")).toBe(TOKEN);
    expect(readdirSync(state).sort()).toEqual([".CREDENTIALS.JSON", ".credentials.json"]);
    expect(lstatSync(standIn).isFile()).toBe(true);
    expect(readFileSync(standIn, "utf8")).toBe("");
    expect(readFileSync(secret, "utf8")).toBe("HOST-SECRET\n");
  }, 120_000);
});

describe.skipIf(IS_PODMAN)("sandbox run on Docker: attacks on what sandbox does around the hidden login", () => {
  const work = join(root, "cli-work");
  const xdg = join(root, "cli-state");
  mkdirSync(work, { recursive: true });
  const env = (key: boolean) => ({ XDG_STATE_HOME: xdg, ANTHROPIC_API_KEY: key ? KEY : undefined });
  const run = (script: string, options: { key: boolean; cwd?: string; extra?: string[] }) =>
    runSandbox(["run", "--agent", "claude", "--image", TEST_IMAGE, ...(options.extra ?? []), "sh", "-c", script], { cwd: options.cwd ?? work, env: env(options.key), timeoutMs: 110_000 });
  let state = "";

  /** Waits for a file the container makes in the workspace (the run's progress), failing the test if the run ends first. */
  async function reached(path: string, running: Promise<RunResult>): Promise<void> {
    let ended: RunResult | undefined;
    void running.then((r) => (ended = r));
    while (!existsSync(path)) {
      if (ended) throw new Error(`the run ended (${ended.code}) before ${path}: ${ended.stderr}`);
      await Bun.sleep(50);
    }
  }

  test("set-up: the workspace's state folder", async () => {
    const first = await run("true", { key: false });
    expect(first.code).toBe(0);
    const dir = join(xdg, "sandbox", "agents", "claude");
    state = join(dir, readdirSync(dir).find((n) => !n.endsWith(".workspace")) ?? "none");
    expect(existsSync(state)).toBe(true);
  }, 60_000);

  test("a fifo, a folder or a dangling link at the login file's place: refused at once (125), nothing opened, followed or changed", async () => {
    const login = join(state, ".credentials.json");
    const cases: Array<[string, () => void, string]> = [
      ["fifo", () => execFileSync("mkfifo", [login]), "is not a regular file"],
      ["folder", () => mkdirSync(login), "is a folder, not a file"],
      ["dangling link", () => symlinkSync(join(root, "made-through-link.json"), login), "is a symbolic link, which sandbox does not follow"],
    ];
    for (const [, make, why] of cases) {
      make();
      const r = await run("echo ran", { key: true });
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`${login} ${why}`);
      expect(r.stdout.toString()).toBe("");
      rmSync(login, { recursive: true });
    }
    expect(existsSync(join(root, "made-through-link.json"))).toBe(false);
    expect(readdirSync(state)).toEqual([]);
  }, 60_000);

  test("two hidden runs at once, no login saved: the first to end leaves the file the second's cover sits on; the last removes it", async () => {
    for (const f of ["a-up", "a-go", "b-up", "b-go"]) rmSync(join(work, f), { force: true });
    const wait = (name: string) => `while [ ! -e /work/${name} ]; do sleep 0.1; done`;
    const a = run(`touch /work/a-up; ${wait("a-go")}`, { key: true });
    await reached(join(work, "a-up"), a);
    // The second run starts while the first holds the made file.
    const b = run(
      [
        "touch /work/b-up",
        wait("b-go"),
        'echo "content=[$(cat ~/.claude/.credentials.json 2>&1)]"',
        "(echo planted > ~/.claude/.credentials.json) 2>/dev/null && echo write=ok || echo write=refused",
      ].join("\n"),
      { key: true },
    );
    await reached(join(work, "b-up"), b);
    writeFileSync(join(work, "a-go"), "");
    expect((await a).code).toBe(0);
    // The first run ended first: the file is still there, for the second's cover.
    expect(readdirSync(state)).toEqual([".credentials.json"]);
    writeFileSync(join(work, "b-go"), "");
    const second = await b;
    expect(second.code).toBe(0);
    expect(lines(second.stdout.toString())).toEqual(["content=[]", "write=refused"]);
    expect(readdirSync(state)).toEqual([]);
  }, 120_000);

  test("a run beside the hidden one replaces the made file with a link to an empty file of the host's: the cleanup removes neither the file nor anything through the link", async () => {
    for (const f of ["h-up", "h-go", "p-done"]) rmSync(join(work, f), { force: true });
    const victim = join(root, "victim-empty");
    writeFileSync(victim, "");
    const hidden = run("touch /work/h-up; while [ ! -e /work/h-go ]; do sleep 0.1; done", { key: true });
    await reached(join(work, "h-up"), hidden);
    expect(readdirSync(state)).toEqual([".credentials.json"]);
    // No key: nothing hidden in this one, so it can change the made file as it likes.
    const plant = await run(`cd ~/.claude && rm -f .credentials.json && ln -s ${victim} .credentials.json && touch /work/p-done`, { key: false });
    expect(plant.code).toBe(0);
    writeFileSync(join(work, "h-go"), "");
    expect((await hidden).code).toBe(0);
    // The link is not what was made: left as it is, the host's file untouched.
    expect(readFileSync(victim, "utf8")).toBe("");
    expect(readlinkSync(join(state, ".credentials.json"))).toBe(victim);
    rmSync(join(state, ".credentials.json"));
  }, 120_000);

  test("a run whose workspace holds sandbox's state links the stand-in to a host file: the next hidden run still reads an empty file", async () => {
    const secret = join(root, "host-secret");
    writeFileSync(secret, "HOST-SECRET\n", { mode: 0o600 });
    const standIn = credentialStandIn(join(xdg, "sandbox"));
    // Its workspace is the XDG state folder itself: refused unless allowed on purpose (cli/host-paths.ts)...
    const refusedPlace = await runSandbox(["run", "--image", TEST_IMAGE, "true"], { cwd: xdg, env: env(false) });
    expect(refusedPlace.code).toBe(125);
    expect(refusedPlace.stderr).toContain("it is the folder that holds sandbox's own state");
    // ...and allowed, sandbox's state is the command's to change.
    const plant = await runSandbox(["run", "--allow-dangerous-workspace", "--image", TEST_IMAGE, "sh", "-c", `rm -f /work/sandbox/stand-ins/empty && ln -s ${secret} /work/sandbox/stand-ins/empty`], {
      cwd: xdg,
      env: env(false),
    });
    expect(plant.code).toBe(0);
    expect(lstatSync(standIn).isSymbolicLink()).toBe(true);
    const r = await run('echo "content=[$(cat ~/.claude/.credentials.json 2>&1)]"', { key: true });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("content=[]\n");
    // The stand-in is a plain empty file again; the host's file is as it was.
    expect(lstatSync(standIn).isFile()).toBe(true);
    expect(readFileSync(standIn, "utf8")).toBe("");
    expect(readFileSync(secret, "utf8")).toBe("HOST-SECRET\n");

    // The stand-in's folder made a link to a host folder holding an `empty` of its own: refused, nothing bound from there.
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, "empty"), "HOST-SECRET\n");
    const folderLink = await runSandbox(["run", "--allow-dangerous-workspace", "--image", TEST_IMAGE, "sh", "-c", `rm -rf /work/sandbox/stand-ins && ln -s ${elsewhere} /work/sandbox/stand-ins`], { cwd: xdg, env: env(false) });
    expect(folderLink.code).toBe(0);
    const refused = await run('echo "content=[$(cat ~/.claude/.credentials.json 2>&1)]"', { key: true });
    expect(refused.code).toBe(125);
    expect(refused.stderr).toContain(`${join(xdg, "sandbox", "stand-ins")} is a link or a file, not a folder`);
    expect(refused.stdout.toString()).toBe("");
    expect(readdirSync(elsewhere)).toEqual(["empty"]);
    expect(readFileSync(join(elsewhere, "empty"), "utf8")).toBe("HOST-SECRET\n");
    rmSync(join(xdg, "sandbox", "stand-ins"));
  }, 120_000);
});
