/**
 * A repository and its runs are untrusted (issue 14), against the real
 * engine. Each test performs the attack a repository (or an earlier run's
 * command) can make through the workspace, then runs sandbox as the user
 * would next and shows it fails:
 *
 *  - consent: an untrusted `.sandbox.yml` is ignored with one line; trusted
 *    with `sandbox trust` it is obeyed; changed, it is ignored again; one
 *    written by a run is never obeyed by the next;
 *  - what even a trusted file cannot do: choose `host` or a named network,
 *    lengthen the timeout, replace the image the user pinned for the agent,
 *    or let its setup steps see forwarded secrets or the agent's state;
 *  - the file as a weapon: `.sandbox.yml` (or `.sandboxignore`,
 *    `.git/config`) as a link to /dev/zero or a FIFO is refused at once,
 *    with bounded memory;
 *  - timeouts past the timer's range are refused, not turned into exit 124.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { managedContainers } from "../helpers/engine.ts";
import { runSandbox, sandboxArgv, TEST_IMAGE, type RunOpts, type RunResult } from "../helpers/sandbox.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-trust-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const img = ["--image", TEST_IMAGE];
/** The user's state (trust records, agent state) and config, per test run: never the developer's. */
const STATE = join(root, "state");
const CONFIG_HOME = join(root, "config");
const lstatOrUndefined = (path: string) => {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
};
const TIME = ["/usr/bin/time", "/bin/time"].find((p) => existsSync(p));

let n = 0;
function workspace(sandboxYml?: string): string {
  const dir = join(root, `ws-${++n}`);
  mkdirSync(dir, { recursive: true });
  if (sandboxYml !== undefined) writeFileSync(join(dir, ".sandbox.yml"), sandboxYml);
  return dir;
}

function sandbox(args: string[], dir: string, opts: RunOpts = {}): Promise<RunResult> {
  return runSandbox(args, { cwd: dir, ...opts, env: { XDG_STATE_HOME: STATE, XDG_CONFIG_HOME: CONFIG_HOME, ...opts.env } });
}

function userConfig(text: string): Record<string, string> {
  const path = join(root, `config-${++n}.yaml`);
  writeFileSync(path, text);
  return { SANDBOX_CONFIG: path };
}

/** The lines of sandbox's own stderr that mention the workspace file. */
const fileLines = (stderr: string, dir: string) => stderr.split("\n").filter((l) => l.includes(join(dir, ".sandbox.yml")));

describe("consent for .sandbox.yml", () => {
  const steps = "setup:\n  - touch /work/marker\n";

  test("an untrusted file is ignored with one line; trusted, it is obeyed; changed, it is ignored again", async () => {
    const dir = workspace(steps);
    const untrusted = await sandbox(["run", ...img, "true"], dir);
    expect(untrusted.code).toBe(0);
    expect(existsSync(join(dir, "marker"))).toBe(false);
    const lines = fileLines(untrusted.stderr, dir);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("you have not trusted it (it would set 1 setup step)");
    expect(lines[0]).toContain(`'sandbox trust' in ${dir}`);

    const trust = await sandbox(["trust"], dir);
    expect(trust.code).toBe(0);
    expect(trust.stdout.toString()).toContain("1. touch /work/marker");
    expect(trust.stdout.toString()).toContain(`trusted ${join(dir, ".sandbox.yml")}`);
    const store = JSON.parse(readFileSync(join(STATE, "sandbox", "trust.json"), "utf8")) as { records: Array<{ workspace: string; sha256: string }> };
    expect(store.records.find((r) => r.workspace === dir)?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(spawnSync("stat", ["-c", "%a", join(STATE, "sandbox", "trust.json")]).stdout.toString().trim()).toBe("600");

    const trusted = await sandbox(["run", ...img, "true"], dir);
    expect(trusted.code).toBe(0);
    expect(existsSync(join(dir, "marker"))).toBe(true);
    expect(fileLines(trusted.stderr, dir)).toHaveLength(0);
    rmSync(join(dir, "marker"));

    writeFileSync(join(dir, ".sandbox.yml"), `${steps}  - echo changed\n`);
    const changed = await sandbox(["run", ...img, "true"], dir);
    expect(existsSync(join(dir, "marker"))).toBe(false);
    expect(fileLines(changed.stderr, dir)[0]).toContain("it changed since you trusted it (it would set 2 setup steps)");

    const list = await sandbox(["trust", "--list"], dir);
    expect(list.stdout.toString()).toContain(`${dir}  sha256`);
    expect(list.stdout.toString()).toContain("changed since: ignored");

    // --trust-workspace-config obeys it for one run, recording nothing.
    const flagged = await sandbox(["run", ...img, "--trust-workspace-config", "true"], dir);
    expect(flagged.code).toBe(0);
    expect(existsSync(join(dir, "marker"))).toBe(true);
    rmSync(join(dir, "marker"));

    const revoke = await sandbox(["trust", "--revoke"], dir);
    expect(revoke.code).toBe(0);
    expect((await sandbox(["trust", "--list"], dir)).stdout.toString()).not.toContain(dir);
  }, 120_000);

  test("config show marks an untrusted file and leaves its settings out", async () => {
    const dir = workspace("timeout: 10m\n");
    const rows = JSON.parse((await sandbox(["config", "show", "--json"], dir)).stdout.toString()) as Array<{ key: string; value: string; source: string }>;
    expect(rows.find((r) => r.key === ".sandbox.yml")?.value).toStartWith("not trusted: ignored (it would set timeout 10m)");
    expect(rows.find((r) => r.key === "container.timeout")?.source).toBe("default");
  });

  test("a .sandbox.yml written by a run's command is not obeyed by the next run", async () => {
    const dir = workspace();
    const text = "setup:\n  - touch /work/pwned\n";
    await sandbox(["run", ...img, "sh", "-c", `printf '${text.replaceAll("\n", "\\n")}' > /work/.sandbox.yml`], dir);
    // Where the guard keeps the command from making it at all (docs/guard.md), plant it as a run that got through would have.
    if (!existsSync(join(dir, ".sandbox.yml")) || readFileSync(join(dir, ".sandbox.yml"), "utf8") !== text) {
      rmSync(join(dir, ".sandbox.yml"), { force: true });
      writeFileSync(join(dir, ".sandbox.yml"), text);
    }
    const next = await sandbox(["run", ...img, "true"], dir);
    expect(next.code).toBe(0);
    expect(existsSync(join(dir, "pwned"))).toBe(false);
    expect(fileLines(next.stderr, dir)[0]).toContain("you have not trusted it");
  }, 60_000);

  test("sandbox trust refuses a file that could not be obeyed, and records nothing", async () => {
    const dir = workspace("cap_add: [SYS_ADMIN]\n");
    const r = await sandbox(["trust"], dir);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("cap_add");
    expect((await sandbox(["trust", "--list"], dir)).stdout.toString()).not.toContain(dir);
  });
});

describe("what even a trusted .sandbox.yml cannot set", () => {
  test("network: host and named networks are ignored with a note; none and bridge are obeyed", async () => {
    // host: the container must still be in its own network namespace (only lo and eth0).
    const host = workspace("network: host\n");
    const r = await sandbox(["run", ...img, "--trust-workspace-config", "ls", "/sys/class/net"], host);
    expect(r.code).toBe(0);
    expect(r.stdout.toString().split(/\s+/).filter(Boolean).sort()).toEqual(["eth0", "lo"]);
    expect(r.stderr).toContain('ignored network "host"');
    expect(r.stderr).toContain("--network host");
    // A named network: ignored, so the run goes on (obeyed, it would fail: no such network).
    const named = workspace("network: sandbox-test-no-such-net\n");
    const n2 = await sandbox(["run", ...img, "--trust-workspace-config", "true"], named);
    expect(n2.code).toBe(0);
    expect(n2.stderr).toContain('ignored network "sandbox-test-no-such-net"');
    // none still tightens.
    const none = workspace("network: none\n");
    const n3 = await sandbox(["run", ...img, "--trust-workspace-config", "ls", "/sys/class/net"], none);
    expect(n3.stdout.toString().trim()).toBe("lo");
  }, 60_000);

  test("timeout: the shorter of the user's and the repository's wins", async () => {
    const repoShorter = workspace("timeout: 2s\n");
    const a = await sandbox(["run", ...img, "--trust-workspace-config", "sleep", "30"], repoShorter);
    expect(a.code).toBe(124);
    expect(a.ms).toBeLessThan(20_000);
    // The repository asks for an hour; the user's 2s stands, with a note.
    const repoLonger = workspace("timeout: 1h\n");
    const b = await sandbox(["run", ...img, "--trust-workspace-config", "sleep", "30"], repoLonger, { env: userConfig("container:\n  timeout: 2s\n") });
    expect(b.code).toBe(124);
    expect(b.ms).toBeLessThan(20_000);
    expect(b.stderr).toContain("ignored timeout 1h");
  }, 60_000);

  test("the repository's image does not replace the image the user pinned for the agent", async () => {
    const dir = workspace("image: sandbox-test/evil-never-pulled:1\n");
    const env = userConfig(`agents:\n  claude:\n    image: ${TEST_IMAGE}\n`);
    const r = await sandbox(["run", "--trust-workspace-config", "--agent", "claude", "--no-state", "--pull", "never", "sh", "-c", "echo pinned-image-ran"], dir, { env });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("pinned-image-ran\n");
    expect(r.stderr).toContain("ignored image sandbox-test/evil-never-pulled:1 from .sandbox.yml");
    // Without a pin, the repository's image is still used (here: refused as missing, proving it was chosen).
    const unpinned = await sandbox(["run", "--trust-workspace-config", "--pull", "never", "true"], dir);
    expect(unpinned.code).toBe(125);
    expect(unpinned.stderr).toContain("sandbox-test/evil-never-pulled:1");
  }, 60_000);

  test("setup steps see neither the secrets the user forwards nor the agent's state; the command sees both", async () => {
    const dir = workspace(
      "setup:\n  - echo \"key=[$SANDBOX_TEST_SECRET] state=[$(cat $HOME/.claude/token 2>/dev/null)]\" > /work/seen-by-setup\n  - echo leftover > $HOME/setup-home\n",
    );
    const env = { SANDBOX_TEST_SECRET: "s3cr3t-value" };
    // An earlier run of the agent left its login in its state.
    const login = await sandbox(["run", ...img, "--agent", "claude", "sh", "-c", "mkdir -p $HOME/.claude && echo tok-123 > $HOME/.claude/token"], dir);
    expect(login.code).toBe(0);
    const r = await sandbox(
      ["run", ...img, "--trust-workspace-config", "--agent", "claude", "--env", "SANDBOX_TEST_SECRET", "sh", "-c", 'echo "cmd key=[$SANDBOX_TEST_SECRET] state=[$(cat $HOME/.claude/token)]"'],
      dir,
      { env },
    );
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, "seen-by-setup"), "utf8")).toBe("key=[] state=[]\n");
    expect(r.stdout.toString()).toBe("cmd key=[s3cr3t-value] state=[tok-123]\n");
    expect(r.stderr).toContain("setup steps run first in a container of their own, without the variables you gave (SANDBOX_TEST_SECRET) or the agent's state");
    expect((await managedContainers(`io.sandbox.workspace=${dir}`)).length).toBe(0);
  }, 120_000);

  test("a failing setup step in its own container stops the run with its code; the command never starts", async () => {
    const dir = workspace("setup:\n  - exit 7\n");
    const r = await sandbox(["run", ...img, "--trust-workspace-config", "--env", "X=1", "sh", "-c", "touch /work/ran"], dir);
    expect(r.code).toBe(7);
    expect(existsSync(join(dir, "ran"))).toBe(false);
  }, 60_000);
});

describe("the workspace's files as a weapon", () => {
  /** Runs sandbox under time(1) when there is one: the peak RSS of the process, in KiB. */
  async function timed(args: string[], dir: string): Promise<RunResult & { maxRssKiB: number | undefined }> {
    const launcher = TIME ? [TIME, "-f", "maxrss-kib=%M", ...sandboxArgv()] : undefined;
    const r = await sandbox(args, dir, { timeoutMs: 15_000, ...(launcher ? { launcher } : {}) });
    const rss = /maxrss-kib=(\d+)/.exec(r.stderr)?.[1];
    return { ...r, maxRssKiB: rss === undefined ? undefined : Number(rss) };
  }

  function expectRefusedFast(r: RunResult & { maxRssKiB: number | undefined }, file: string, why: RegExp): void {
    expect(r.signal).toBeNull();
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`refusing to read ${file}`);
    expect(r.stderr).toMatch(why);
    expect(r.ms).toBeLessThan(3000);
    if (r.maxRssKiB !== undefined) expect(r.maxRssKiB).toBeLessThan(300 * 1024);
    console.log(`refused ${file.split("/").pop()} in ${r.ms} ms, peak RSS ${r.maxRssKiB ?? "?"} KiB`);
  }

  test(".sandbox.yml as a link to /dev/zero (git stores links) is refused at once, with bounded memory", async () => {
    const dir = workspace();
    symlinkSync("/dev/zero", join(dir, ".sandbox.yml"));
    expectRefusedFast(await timed(["run", ...img, "true"], dir), join(dir, ".sandbox.yml"), /symbolic link to \/dev\/zero/);
    // Neither trust nor the flag reads through it.
    expectRefusedFast(await timed(["trust"], dir), join(dir, ".sandbox.yml"), /symbolic link/);
    expectRefusedFast(await timed(["run", ...img, "--trust-workspace-config", "true"], dir), join(dir, ".sandbox.yml"), /symbolic link/);
  }, 60_000);

  test("a FIFO named .sandbox.yml, made by an earlier run, does not hang the next one", async () => {
    const dir = workspace();
    const file = join(dir, ".sandbox.yml");
    await sandbox(["run", ...img, "mkfifo", "/work/.sandbox.yml"], dir);
    // Where the guard keeps the command from making it at all (docs/guard.md), plant it as a run that got through would have.
    if (!lstatOrUndefined(file)?.isFIFO()) {
      rmSync(file, { force: true });
      expect(spawnSync("mkfifo", [file]).status).toBe(0);
    }
    expectRefusedFast(await timed(["run", ...img, "true"], dir), join(dir, ".sandbox.yml"), /FIFO/);
  }, 60_000);

  test("a link to a file outside the workspace is not read either", async () => {
    const dir = workspace();
    const outside = join(root, "outside.yml");
    writeFileSync(outside, "setup:\n  - touch /work/pwned\n");
    symlinkSync(outside, join(dir, ".sandbox.yml"));
    const r = await sandbox(["run", ...img, "--trust-workspace-config", "true"], dir);
    expect(r.code).toBe(125);
    expect(existsSync(join(dir, "pwned"))).toBe(false);
  });

  test(".git/config and .sandboxignore get the same treatment", async () => {
    const git = workspace();
    mkdirSync(join(git, ".git"));
    expect(spawnSync("mkfifo", [join(git, ".git", "config")]).status).toBe(0);
    expectRefusedFast(await timed(["run", ...img, "true"], git), join(git, ".git", "config"), /FIFO/);
    const ignore = workspace();
    symlinkSync("/dev/zero", join(ignore, ".sandboxignore"));
    expectRefusedFast(await timed(["run", ...img, "--workspace-mode", "copy", "true"], ignore), join(ignore, ".sandboxignore"), /symbolic link/);
    expect((await managedContainers(`io.sandbox.workspace=${ignore}`)).length).toBe(0);
  }, 60_000);
});

describe("timeouts past the timer's range", () => {
  test("--timeout 600h and 597h are refused before anything is made", async () => {
    const dir = workspace();
    for (const t of ["600h", "597h"]) {
      const r = await sandbox(["run", ...img, "--timeout", t, "true"], dir);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`--timeout ${t} is longer than 596h`);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  test("timeout: 600h in the user's config and in a trusted .sandbox.yml is refused", async () => {
    const user = workspace();
    const r = await sandbox(["run", ...img, "true"], user, { env: userConfig("container:\n  timeout: 600h\n") });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("container.timeout: expected a timeout of at most 596h");
    const repo = workspace("timeout: 600h\n");
    const w = await sandbox(["run", ...img, "--trust-workspace-config", "true"], repo);
    expect(w.code).toBe(125);
    expect(w.stderr).toContain("timeout: expected a timeout of at most 596h");
  });

  test("596h, within the range, runs the command normally (not exit 124 at once)", async () => {
    const r = await sandbox(["run", ...img, "--timeout", "596h", "sh", "-c", "sleep 1; echo done"], workspace());
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("done\n");
  }, 60_000);
});
