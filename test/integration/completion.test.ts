/**
 * Completion of what only the engine knows: `sandbox __complete` against the
 * real engine (its images, sandbox's containers and nobody else's), against
 * a dead socket and one that never answers (nothing, exit 0, at once or
 * after its short timeout), and bash completing `--image` and `inspect`
 * through it, with `sandbox` on PATH being the CLI under test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CANDIDATES_TIMEOUT_MS } from "../../src/cli/completion/candidates.ts";
import { createContainer, inspectContainer, removeContainer } from "../../src/engine/containers.ts";
import { bashReply, bashTyped, hasCommand } from "../helpers/bash-completion.ts";
import { testEngine } from "../helpers/engine.ts";
import { runSandbox, sandboxArgv, TEST_IMAGE } from "../helpers/sandbox.ts";

const hex = randomBytes(4).toString("hex");
const work = mkdtempSync(join(tmpdir(), "sandbox-completion-"));
const bin = join(work, "bin");
/** PATH for the shells: `sandbox` is the CLI under test (source or SANDBOX_BIN). */
const PATH = `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`;
const ours = `sandbox-cmpl-${hex}`;
const theirs = `cmpl-foreign-${hex}`;
let oursId = "";
let bashScript = "";
let hung: Server | undefined;
const hungSocket = join(work, "hung.sock");
const held: Socket[] = [];

beforeAll(async () => {
  mkdirSync(bin);
  writeFileSync(join(bin, "sandbox"), `#!/bin/sh\nexec ${sandboxArgv().map((a) => `'${a}'`).join(" ")} "$@"\n`);
  chmodSync(join(bin, "sandbox"), 0o755);
  const script = await runSandbox(["completion", "bash"]);
  bashScript = script.stdout.toString();
  // One container of ours (kept, stopped) and one of another tool's.
  const kept = await runSandbox(["run", "--keep", "--name", ours, "--image", TEST_IMAGE, "--workspace", work, "true"]);
  if (kept.code !== 0) throw new Error(`sandbox run --keep failed: ${kept.stderr}`);
  oursId = (await inspectContainer(await testEngine(), ours))?.Id ?? "";
  await createContainer(await testEngine(), theirs, { Image: TEST_IMAGE, Cmd: ["true"], Labels: { sandbox: "true" } });
  // An "engine" that accepts connections and never answers.
  hung = createServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => hung!.listen(hungSocket, resolve));
}, 120_000);

afterAll(async () => {
  for (const name of [ours, theirs]) await removeContainer(await testEngine(), name, { force: true }).catch(() => {});
  for (const socket of held) socket.destroy();
  hung?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("sandbox __complete", () => {
  test("images: the engine's local images, the test image among them", async () => {
    const r = await runSandbox(["__complete", "images"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.toString().split("\n").filter(Boolean);
    expect(lines).toContain(TEST_IMAGE);
    expect(lines.every((l) => !l.startsWith("<none>") && !l.startsWith("localhost/"))).toBe(true);
  }, 30_000);

  test("containers: ours by name and short id, another tool's never", async () => {
    const r = await runSandbox(["__complete", "containers"]);
    expect(r.code).toBe(0);
    const words = r.stdout.toString().split("\n").filter(Boolean).map((l) => l.split("\t")[0]);
    expect(words).toContain(ours);
    expect(words).toContain(oursId.slice(0, 12));
    expect(words).not.toContain(theirs);
  }, 30_000);

  test("a dead socket: nothing, exit 0, at once (not after the timeout)", async () => {
    const r = await runSandbox(["__complete", "images"], { env: { DOCKER_HOST: `unix://${join(work, "nothing.sock")}` } });
    expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(r.ms).toBeLessThan(CANDIDATES_TIMEOUT_MS);
    // -H before __complete is the engine asked, as in `sandbox -H ADDR run --image <TAB>`.
    const flagged = await runSandbox(["-H", `unix://${join(work, "nothing.sock")}`, "__complete", "containers"]);
    expect({ code: flagged.code, stdout: flagged.stdout.toString() }).toEqual({ code: 0, stdout: "" });
  }, 30_000);

  test("an engine that never answers: nothing, exit 0, after the short timeout", async () => {
    const r = await runSandbox(["__complete", "images"], { env: { DOCKER_HOST: `unix://${hungSocket}` } });
    expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(held.length).toBeGreaterThan(0); // it did connect
    expect(r.ms).toBeGreaterThanOrEqual(CANDIDATES_TIMEOUT_MS);
    expect(r.ms).toBeLessThan(CANDIDATES_TIMEOUT_MS + 5_000);
  }, 30_000);
});

describe("bash completion from the engine", () => {
  test("COMPREPLY for `sandbox run --image sandbox-te` holds the test image", () => {
    const { reply, stderr } = bashReply(bashScript, ["sandbox", "run", "--image", TEST_IMAGE.slice(0, 10)], { ...process.env, PATH });
    expect(stderr).toBe("");
    expect(reply).toContain(TEST_IMAGE);
    expect(reply.every((word) => word.startsWith(TEST_IMAGE.slice(0, 10)))).toBe(true);
  }, 30_000);

  test("COMPREPLY for `sandbox inspect sandbox-cmpl-` is our container; a dead engine gives none", () => {
    expect(bashReply(bashScript, ["sandbox", "inspect", "sandbox-cmpl-"], { ...process.env, PATH }).reply).toContain(ours);
    const dead = bashReply(bashScript, ["sandbox", "-H", `unix://${join(work, "nothing.sock")}`, "inspect", ""], { ...process.env, PATH });
    expect(dead).toEqual({ reply: [], stderr: "" });
  }, 30_000);

  test.skipIf(!hasCommand("script"))("typed into a real bash: the image completes across its ':', in both --image forms", () => {
    const image = TEST_IMAGE; // sandbox-test/busybox:1
    const colon = image.indexOf(":");
    const got = bashTyped(bashScript, [
      `sandbox run --image ${image.slice(0, colon + 1)}`,
      `sandbox run --image=${image.slice(0, colon + 1)}`,
      `sandbox inspect ${ours.slice(0, -3)}`,
    ], { ...process.env, PATH });
    expect(got).toEqual([`run --image ${image}`, `run --image=${image}`, `inspect ${ours}`]);
  }, 60_000);
});
