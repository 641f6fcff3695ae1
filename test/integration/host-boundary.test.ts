/**
 * The run never makes the host act on what the command left behind (issue
 * 13), against the real engine. Each test performs the attack from inside a
 * real container (or plants it in the workspace), then does what the host
 * would do next and shows it fails:
 *
 *  - output: 200 MB printed to stdout arrives byte-complete through attach,
 *    and the engine keeps no copy of it on the host (log driver none); a
 *    container made without that setting shows the same measurement would
 *    see a log grow;
 *  - `--audit`: a link planted by one run's command is refused by the next
 *    run's --audit, and the file it points at is unchanged;
 *  - control characters: names and request targets the command chose reach
 *    stderr escaped, also with -q;
 *  - unix sockets: a live socket of a host service in the workspace cannot
 *    be reached from inside; `/`, $HOME, /run... are refused as workspaces.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createContainer, inspectContainer, removeContainer, startContainer, waitContainer } from "../../src/engine/containers.ts";
import { inspectImage } from "../../src/engine/images.ts";
import { apiHostConfig, managedContainers, testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, ROOT, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-boundary-")));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(root, { recursive: true, force: true });
});
const img = ["--image", TEST_IMAGE];
const NODE_IMAGE = "sandbox-test/node:22";
const CAN_EGRESS = !IS_PODMAN && process.getuid?.() === 0;
/** Anything a terminal would act on: C0 but newline, DEL, C1. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

function workspace(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function leftovers(ws: string): Promise<number> {
  return (await managedContainers(`io.sandbox.workspace=${ws}`)).length;
}

// ------------------------------------------------------------------- output

/** Bytes in regular files under `dir` (0 when it is gone). */
function bytesUnder(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (st.isDirectory()) total += bytesUnder(path);
      else if (st.isFile()) total += st.size;
    } catch {
      // Removed while we looked.
    }
  }
  return total;
}

type Details = { Id: string; LogPath?: string; HostnamePath?: string; HostConfig: { LogConfig?: { Type?: string } } };

/** Every folder where this engine keeps a container's files, its log among them. */
async function engineFolders(id: string): Promise<string[]> {
  const engine = await testEngine();
  const details = (await inspectContainer(engine, id)) as unknown as Details;
  const folders = new Set<string>();
  if (details.LogPath) folders.add(dirname(details.LogPath));
  if (details.HostnamePath) folders.add(dirname(details.HostnamePath));
  if (IS_PODMAN) {
    // Podman keeps the log (ctr.log) in the container's static folder, under its graph root.
    const { body } = await engine.json<{ StaticDir?: string }>({ method: "GET", path: `/libpod/containers/${details.Id}/json` });
    if (body.StaticDir) folders.add(body.StaticDir);
  } else {
    const { body } = await engine.json<{ DockerRootDir?: string }>({ method: "GET", path: "/info" });
    folders.add(`${body.DockerRootDir ?? "/var/lib/docker"}/containers/${details.Id}`);
  }
  return [...folders];
}

describe("the command's output is not stored on the host", () => {
  test("200 MB on stdout arrive byte-complete, and nothing in the engine's folders for the container grows", async () => {
    const ws = workspace("output");
    const name = `sandbox-boundary-out-${randomBytes(3).toString("hex")}`;
    const size = 200_000_000;
    let received = 0;
    let zeroes = true;
    const running = runSandbox(
      [
        "run",
        ...img,
        "--network",
        "none",
        "--name",
        name,
        "sh",
        "-c",
        // Time for the test to find the container's folders first, and to look at them after.
        `sleep 2; head -c ${size} /dev/zero; sleep 1`,
      ],
      {
        cwd: ws,
        timeoutMs: 110_000,
        stdoutSink: (chunk) => {
          received += chunk.length;
          if (zeroes && chunk.some((b) => b !== 0)) zeroes = false;
        },
      },
    );
    let done = false;
    void running.then(() => (done = true));
    const engine = await testEngine();
    let details: Details | undefined;
    while (!done && !details) {
      details = (await inspectContainer(engine, name).catch(() => undefined)) as unknown as Details | undefined;
      if (!details) await Bun.sleep(50);
    }
    expect(details).toBeDefined();
    expect(details?.HostConfig.LogConfig?.Type).toBe("none");
    const folders = await engineFolders(name);
    const baseline = folders.map(bytesUnder);
    let grown = 0;
    while (!done) {
      folders.forEach((dir, i) => (grown = Math.max(grown, bytesUnder(dir) - (baseline[i] ?? 0))));
      await Bun.sleep(50);
    }
    const r = await running;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(received).toBe(size);
    expect(zeroes).toBe(true);
    // Kilobytes of engine bookkeeping at most; a log would hold the 200 MB.
    expect(grown).toBeLessThan(1024 * 1024);
  }, 120_000);

  test("the measurement sees a log when there is one (a container made without log driver none)", async () => {
    const engine = await testEngine();
    const id = await createContainer(engine, `sandbox-boundary-log-${randomBytes(3).toString("hex")}`, {
      Image: TEST_IMAGE,
      Cmd: ["sh", "-c", "head -c 20000000 /dev/zero"],
      Labels: { "io.sandbox.test": "boundary" },
      HostConfig: apiHostConfig({ NetworkMode: "none" }),
    });
    try {
      const driver = ((await inspectContainer(engine, id)) as unknown as Details).HostConfig.LogConfig?.Type;
      const folders = await engineFolders(id);
      const before = folders.reduce((sum, dir) => sum + bytesUnder(dir), 0);
      await startContainer(engine, id);
      await waitContainer(engine, id);
      const after = folders.reduce((sum, dir) => sum + bytesUnder(dir), 0);
      // The engines' file drivers; a host configured for journald or syslog keeps it elsewhere.
      if (driver === "json-file" || driver === "k8s-file" || driver === "local") expect(after - before).toBeGreaterThan(5_000_000);
    } finally {
      await removeContainer(engine, id, { force: true });
    }
  }, 60_000);
});

// -------------------------------------------------------------------- audit

describe("--audit never writes where the command could point it", () => {
  test("run 1 plants egress.jsonl -> ~/.bashrc in the workspace; run 2 with --audit egress.jsonl is refused and ~/.bashrc is unchanged", async () => {
    const ws = workspace("audit");
    const home = workspace("audit-home");
    const bashrc = join(home, ".bashrc");
    writeFileSync(bashrc, "# the user's own\n");
    const plant = await runSandbox(["run", ...img, "--network", "none", "sh", "-c", `ln -s ${bashrc} egress.jsonl && echo planted`], { cwd: ws });
    expect(plant.stdout.toString()).toBe("planted\n");
    expect(lstatSync(join(ws, "egress.jsonl")).isSymbolicLink()).toBe(true);

    const r = await runSandbox(["run", ...img, "--egress", "allowed.test", "--audit", "egress.jsonl", "sh", "-c", "echo ran"], { cwd: ws, env: { HOME: home } });
    expect(r.code).toBe(125);
    expect(r.stdout.toString()).toBe("");
    expect(r.stderr).toContain(`refusing to write the audit file ${join(ws, "egress.jsonl")}: it is a symbolic link (to ${bashrc})`);
    expect(readFileSync(bashrc, "utf8")).toBe("# the user's own\n");
    expect(await leftovers(ws)).toBe(0);
  }, 60_000);

  test("a plain file in the workspace is refused too: the command could replace it with a link, or rewrite the record", async () => {
    const ws = workspace("audit-inside");
    const r = await runSandbox(["run", ...img, "--egress", "allowed.test", "--audit", "logs/egress.jsonl", "sh", "-c", "echo ran"], { cwd: ws });
    expect(r.code).toBe(125);
    expect(r.stdout.toString()).toBe("");
    expect(r.stderr).toContain(`refusing --audit ${join(ws, "logs/egress.jsonl")}: it is inside the workspace ${ws}.`);
    expect(r.stderr).toContain(`e.g. --audit ${join(root, "audit-inside-egress.jsonl")}`);
    expect(await leftovers(ws)).toBe(0);
  }, 60_000);
});

// -------------------------------------------------------- control characters

describe("names the command or the workspace chose reach stderr escaped", () => {
  test("a protected path linked to a folder named with escape sequences: the warning shows them escaped, also with -q", async () => {
    const ws = workspace("escape");
    const evil = "\x1b]0;pwned\x07\x1b[2J\x1b[Hsandbox: all clear";
    mkdirSync(join(ws, evil));
    symlinkSync(evil, join(ws, ".vscode"));
    const r = await runSandbox(["run", ...img, "--network", "none", "-q", "sh", "-c", "echo ok"], { cwd: ws });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("ok\n");
    expect(r.stderr).toBe(
      "sandbox: warning: .vscode is a symlink: protecting its target \\x1b]0;pwned\\x07\\x1b[2J\\x1b[Hsandbox: all clear, but the link itself can be replaced\n",
    );
    expect(r.stderr).not.toMatch(RAW_CONTROL);
  }, 60_000);

  test.skipIf(!CAN_EGRESS)("a CONNECT to a 'host' made of escape sequences is summarised escaped (egress, Docker as root)", async () => {
    const ws = workspace("escape-egress");
    // busybox nc speaks to the proxy by hand; the target is not a host name, so the proxy denies it at once.
    const script = [
      'p=${HTTP_PROXY#http://}',
      `printf 'CONNECT \\033]0;pwned\\007\\033[2Jx.test:443 HTTP/1.1\\r\\n\\r\\n' | nc -w 5 "\${p%:*}" "\${p##*:}" >/dev/null`,
      "echo sent",
    ].join("; ");
    const r = await runSandbox(["run", ...img, "--egress", "allowed.test", "-q", "sh", "-c", script], { cwd: ws });
    expect(r.stdout.toString()).toBe("sent\n");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("sandbox: warning: egress: denied 1 of 1 connection:");
    expect(r.stderr).toContain("  [\\x1b]0;pwned\\x07\\x1b[2Jx.test:443]:0: malformed CONNECT target\n");
    expect(r.stderr).not.toMatch(RAW_CONTROL);
  }, 60_000);
});

// ------------------------------------------------------------- unix sockets

/** A host service on a unix socket: answers every connection, and counts them. */
async function hostService(path: string): Promise<{ connections: () => number }> {
  let count = 0;
  const server = createServer((c) => {
    count++;
    c.end("HOST-SECRET\n");
  });
  servers.push(server);
  await new Promise<void>((ready) => server.listen(path, () => ready()));
  return { connections: () => count };
}

async function hasImage(ref: string): Promise<boolean> {
  return (await inspectImage(await testEngine(), ref).catch(() => undefined)) !== undefined;
}

/** Node's connect, from inside: prints what the service said, or the error code. */
const CONNECT_JS =
  "const c=require('net').connect(process.argv[1]);let d='';c.on('data',b=>d+=b);c.on('end',()=>console.log('got '+d.trim()));c.on('error',e=>console.log('error '+e.code))";

describe("unix sockets in the workspace are out of the command's reach", () => {
  test("a live socket is covered by an empty read-only file and named in one info line (hidden by -q)", async () => {
    const ws = workspace("socket");
    mkdirSync(join(ws, "run"));
    const service = await hostService(join(ws, "run", "engine.sock"));
    expect(statSync(join(ws, "run", "engine.sock")).isSocket()).toBe(true);
    const script = "if [ -S run/engine.sock ]; then echo socket; fi; stat -c %F run/engine.sock; wc -c < run/engine.sock; ( echo x > run/engine.sock ) 2>/dev/null || echo read-only";
    const r = await runSandbox(["run", ...img, "--network", "none", "sh", "-c", script], { cwd: ws });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe("regular empty file\n0\nread-only\n");
    expect(r.stderr).toBe("sandbox: masked 1 unix socket in the workspace (a host service listening there would answer the container): run/engine.sock\n");
    const quiet = await runSandbox(["run", ...img, "--network", "none", "-q", "true"], { cwd: ws });
    expect(quiet.stderr).toBe("");
    expect(statSync(join(ws, "run", "engine.sock")).isSocket()).toBe(true);
    expect(service.connections()).toBe(0);
  }, 60_000);

  test("under Deno too (its directory entries cannot tell a socket: the walk asks lstat)", async () => {
    const ws = workspace("socket-deno");
    await hostService(join(ws, "api.sock"));
    const launcher = [join(ROOT, "node_modules/.bin/deno"), "run", "-A", "--no-prompt", join(ROOT, "src/main.ts")];
    const r = await runSandbox(["run", ...img, "--network", "none", "stat", "-c", "%F", "api.sock"], { cwd: ws, launcher, env: { NO_COLOR: "1" } });
    expect(r.stdout.toString()).toBe("regular empty file\n");
    expect(r.stderr).toBe("sandbox: masked 1 unix socket in the workspace (a host service listening there would answer the container): api.sock\n");
    expect(r.code).toBe(0);
  }, 60_000);

  test("connecting to it from inside fails; a container without the mask would have reached the host service", async () => {
    if (!(await hasImage(NODE_IMAGE))) {
      console.warn(`skipped: ${NODE_IMAGE} is not on this engine (scripts/setup-engine.sh makes it)`);
      return;
    }
    const ws = workspace("socket-connect");
    const service = await hostService(join(ws, "docker.sock"));
    const r = await runSandbox(["run", "--image", NODE_IMAGE, "--network", "none", "-q", "node", "-e", CONNECT_JS, "/work/docker.sock"], { cwd: ws });
    expect(r.stderr).toBe("");
    // The empty read-only file is not a socket: refused (EACCES: no write permission, as connect(2) needs; or ECONNREFUSED).
    expect(r.stdout.toString()).toMatch(/^error (EACCES|ECONNREFUSED)\n$/);
    expect(r.code).toBe(0);
    expect(service.connections()).toBe(0);

    // The attack is real: the same workspace bound plainly (what a bare `docker run -v` does) reaches the service.
    const engine = await testEngine();
    const id = await createContainer(engine, `sandbox-boundary-sock-${randomBytes(3).toString("hex")}`, {
      Image: NODE_IMAGE,
      Cmd: ["node", "-e", CONNECT_JS, "/work/docker.sock"],
      Labels: { "io.sandbox.test": "boundary" },
      HostConfig: apiHostConfig({ NetworkMode: "none", Mounts: [{ Type: "bind", Source: ws, Target: "/work" }] }),
    });
    try {
      await startContainer(engine, id);
      expect((await waitContainer(engine, id)).StatusCode).toBe(0);
    } finally {
      await removeContainer(engine, id, { force: true });
    }
    expect(service.connections()).toBe(1);
  }, 120_000);
});

describe("the host's own folders are refused as workspaces", () => {
  test("$HOME (here a temp folder) is refused with exit 125 before anything is made; --allow-dangerous-workspace runs with a warning, its engine socket still masked", async () => {
    const home = workspace("home");
    mkdirSync(join(home, ".docker", "run"), { recursive: true });
    const service = await hostService(join(home, ".docker", "run", "docker.sock"));
    const refused = await runSandbox(["run", ...img, "--network", "none", "sh", "-c", "echo ran"], { cwd: home, env: { HOME: home } });
    expect(refused.code).toBe(125);
    expect(refused.stdout.toString()).toBe("");
    expect(refused.stderr).toContain(`sandbox: refusing to use ${home} as the workspace: it is your home folder`);
    expect(refused.stderr).toContain("--allow-dangerous-workspace");
    expect(await leftovers(home)).toBe(0);

    const allowed = await runSandbox(
      ["run", ...img, "--network", "none", "--allow-dangerous-workspace", "sh", "-c", "stat -c %F .docker/run/docker.sock"],
      { cwd: home, env: { HOME: home } },
    );
    expect(allowed.code).toBe(0);
    expect(allowed.stdout.toString()).toBe("regular empty file\n");
    expect(allowed.stderr).toContain(`sandbox: warning: --allow-dangerous-workspace: the workspace ${home} is your home folder`);
    expect(allowed.stderr).toContain("masked 1 unix socket in the workspace (a host service listening there would answer the container): .docker/run/docker.sock");
    expect(service.connections()).toBe(0);
  }, 60_000);

  test("/, /etc, /run and /var/run are refused (exit 125, nothing made)", async () => {
    for (const dir of ["/", "/etc", "/run", "/var/run"]) {
      const r = await runSandbox(["run", ...img, "--network", "none", "-w", dir, "true"], { cwd: root });
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`sandbox: refusing to use ${realpathSync(dir)} as the workspace`);
      expect(await leftovers(realpathSync(dir))).toBe(0);
    }
  }, 60_000);
});
