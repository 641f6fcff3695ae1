/**
 * The engine's refusals a newcomer meets, in sandbox's words with the
 * engine's own on the next line (issue #16), on the real engine; and the
 * pull progress line ended before the error that follows it, on a real
 * terminal.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { managedContainers, testEngine } from "../helpers/engine.ts";
import { cleanEnv, IS_PODMAN, runSandbox, sandboxArgv, TEST_IMAGE } from "../helpers/sandbox.ts";

const work = mkdtempSync(join(tmpdir(), "sandbox-refusals-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (...args: string[]) => runSandbox(["run", "--image", TEST_IMAGE, ...args], { cwd: work });
const CLI = IS_PODMAN ? "podman" : "docker";

/** The engine's CPUs, as /info reports them. */
async function engineCpus(): Promise<number> {
  const reply = await (await testEngine()).json<{ NCPU: number }>({ method: "GET", path: "/info" });
  return reply.body.NCPU;
}

async function leftovers(): Promise<number> {
  return (await managedContainers(`io.sandbox.workspace=${work}`)).length;
}

describe("the engine's refusals in sandbox's words", () => {
  test("a network that does not exist names it, and how to make it; the engine's words follow", async () => {
    const r = await run("--network", "nosuchnet", "true");
    expect(r.code).toBe(125);
    const [first, second, ...rest] = r.stderr.trimEnd().split("\n");
    expect(first).toBe(`sandbox: network "nosuchnet" does not exist; create it with '${CLI} network create nosuchnet' or choose another with --network`);
    expect(second).toMatch(/^ {2}engine: .*nosuchnet.*not found$/);
    expect(rest).toEqual([]);
    expect(r.stderr).not.toMatch(/[0-9a-f]{64}/);
    expect(await leftovers()).toBe(0);
  });

  test("--cpus above the engine's CPUs: refused on both engines, in the same words (Podman would take it and limit nothing)", async () => {
    const cpus = await engineCpus();
    const r = await run("--cpus", "999", "true");
    expect(r.code).toBe(125);
    expect(r.stderr.split("\n")[0]).toBe(`sandbox: --cpus asks for more CPUs than the engine has (${cpus}); choose --cpus ${cpus} or less`);
    expect(r.stdout.toString()).toBe("");
    expect(await leftovers()).toBe(0);
    // The limit the message offers is accepted.
    expect((await run("--cpus", String(cpus), "true")).code).toBe(0);
  });

  test("a user the image does not have (refused when the container starts)", async () => {
    const r = await run("--user", "abc", "true");
    expect(r.code).toBe(125);
    const [first, second] = r.stderr.split("\n");
    expect(first).toBe(`sandbox: user "abc" does not exist in the image; give a numeric --user UID[:GID], or a name the image's /etc/passwd has`);
    expect(second).toMatch(/^ {2}engine: .*unable to find user abc/);
    expect(await leftovers()).toBe(0);
  });

  test("an address that answers /_ping with 404 and nothing else is not an engine; nothing ends in a bare colon", async () => {
    const server = http.createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = await runSandbox(["run", "--image", TEST_IMAGE, "true"], { cwd: work, env: { DOCKER_HOST: address } });
      expect(r.code).toBe(125);
      expect(r.stderr).toBe(
        `sandbox: ${address} does not look like a Docker or Podman engine (GET /_ping answered HTTP 404); point DOCKER_HOST or --host at the engine's API socket or port\n  engine: no message (HTTP 404)\n`,
      );
      const version = await runSandbox(["version"], { cwd: work, env: { DOCKER_HOST: address } });
      expect(version.stdout.toString()).toContain(`engine: unreachable: ${address} does not look like a Docker or Podman engine`);
      for (const line of [...r.stderr.split("\n"), ...version.stdout.toString().split("\n")]) expect(line).not.toMatch(/:\s*$/);
    } finally {
      server.close();
    }
  });
});

describe("on a terminal, the pull progress line is ended before the next message", () => {
  test("'sandbox: pulling IMAGE' and the error after a failed pull are on lines of their own", () => {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const sandbox = sandboxArgv().map(q).join(" ");
    const r = spawnSync("script", ["-qec", `${sandbox} run --image nosuch/x:1 true; echo "exit=$?"`, "/dev/null"], { cwd: work, env: cleanEnv({ TERM: "xterm" }), encoding: "utf8", timeout: 60_000 });
    const out = r.stdout;
    expect(out).toContain("exit=125");
    expect(out).toContain("sandbox: pulling nosuch/x:1");
    expect(out).not.toMatch(/pulling nosuch\/x:1[^\n]*sandbox: image/);
    // What the terminal shows: the pull line, then the error starting a line of its own.
    const screen = out.split("\n").map((line) => line.split("\r").filter((part) => part !== "").pop()?.replace(/\u001b\[2K/g, "") ?? "");
    const pull = screen.findIndex((line) => line.startsWith("sandbox: pulling nosuch/x:1"));
    expect(pull).toBeGreaterThanOrEqual(0);
    expect(screen[pull + 1]).toStartWith(`sandbox: image "nosuch/x:1" is not present locally and pulling it failed`);
  });
});
