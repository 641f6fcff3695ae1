/**
 * Air-gapped hosts: `sandbox image save/load` round-trip an image through a
 * file with no registry and no docker CLI, and a missing image fails fast
 * with instructions. The shared test image is never removed: a private tag
 * of it is saved, untagged, loaded back and run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testEngine } from "../helpers/engine.ts";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";
import { inspectImage, splitImageRef } from "../../src/engine/images.ts";

const work = mkdtempSync(join(tmpdir(), "sandbox-image-"));
const suffix = Math.random().toString(36).slice(2, 8);
const ROUNDTRIP = `sandbox-test/roundtrip-${suffix}:1`;

async function tag(source: string, target: string): Promise<void> {
  const engine = await testEngine();
  const { fromImage, tag: t } = splitImageRef(target);
  await engine.json({ method: "POST", path: `/images/${encodeURIComponent(source)}/tag`, query: { repo: fromImage, tag: t }, ok: [200, 201] });
}

/** Remove a tag only: the image itself stays while the shared tag points at it. */
async function untag(ref: string): Promise<void> {
  const engine = await testEngine();
  await engine.json({ method: "DELETE", path: `/images/${encodeURIComponent(ref)}`, query: { noprune: true }, expected: [404] });
}

async function exists(ref: string): Promise<boolean> {
  return (await inspectImage(await testEngine(), ref)) !== undefined;
}

beforeAll(async () => {
  await tag(TEST_IMAGE, ROUNDTRIP);
});

afterAll(async () => {
  await untag(ROUNDTRIP);
  rmSync(work, { recursive: true, force: true });
});

describe("sandbox image save / load", () => {
  test("a saved tag, removed and loaded back, exists again and runs", async () => {
    const file = join(work, "roundtrip.tar");
    const saved = await runSandbox(["image", "save", ROUNDTRIP, file], { cwd: work });
    expect(saved.stderr).toContain(`saved ${ROUNDTRIP}`);
    expect(saved.code).toBe(0);
    // A complete tar archive, written via a temporary file that is gone now.
    const bytes = readFileSync(file);
    expect(bytes.subarray(257, 262).toString()).toBe("ustar");
    expect(readdirSync(work)).toEqual(["roundtrip.tar"]);

    await untag(ROUNDTRIP);
    expect(await exists(ROUNDTRIP)).toBe(false);
    expect(await exists(TEST_IMAGE)).toBe(true); // only the tag went

    const loaded = await runSandbox(["image", "load", file], { cwd: work });
    expect(loaded.code).toBe(0);
    expect(loaded.stdout.toString()).toContain(`Loaded image: `);
    expect(loaded.stdout.toString()).toContain(ROUNDTRIP);
    expect(await exists(ROUNDTRIP)).toBe(true);

    const ran = await runSandbox(["run", "--pull", "never", "--image", ROUNDTRIP, "sh", "-c", "echo from-loaded-image"], { cwd: work });
    expect(ran.stdout.toString()).toBe("from-loaded-image\n");
    expect(ran.code).toBe(0);
  }, 30_000);

  test("off a terminal: plain start and end lines, no progress redraws; --quiet: nothing", async () => {
    const file = join(work, "plain.tar");
    const r = await runSandbox(["image", "save", ROUNDTRIP, file], { cwd: work });
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("\r");
    expect(r.stderr).not.toContain("\u001b[");
    expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(2);
    const q = await runSandbox(["image", "load", "--quiet", file], { cwd: work });
    expect(q.code).toBe(0);
    expect(q.stderr).toBe("");
    expect(q.stdout.toString()).toContain(ROUNDTRIP);
    rmSync(file);
  }, 30_000);

  test("save - | load - streams through a pipe", async () => {
    const out = await runSandbox(["image", "save", "--quiet", ROUNDTRIP, "-"], { cwd: work });
    expect(out.code).toBe(0);
    expect(out.stdout.subarray(257, 262).toString()).toBe("ustar");
    const r = await runSandbox(["image", "load", "--quiet", "-"], { cwd: work, input: out.stdout });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain(ROUNDTRIP);
  }, 30_000);

  test("saving a missing image fails with 125 and leaves an existing FILE untouched", async () => {
    const file = join(work, "keep.tar");
    writeFileSync(file, "old contents\n");
    const r = await runSandbox(["image", "save", `sandbox-test/absent-${suffix}:1`, file], { cwd: work });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("is not on this engine");
    expect(readFileSync(file, "utf8")).toBe("old contents\n");
    expect(readdirSync(work).filter((n) => n.startsWith("."))).toEqual([]);
    rmSync(file);
  }, 30_000);

  test("loading a missing file or a non-archive fails with 125 and says why", async () => {
    const missing = await runSandbox(["image", "load", join(work, "nope.tar")], { cwd: work });
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain("nope.tar");
    const junk = join(work, "junk.tar");
    writeFileSync(junk, "this is not a tar archive\n".repeat(100));
    const bad = await runSandbox(["image", "load", junk], { cwd: work });
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain("could not load");
    rmSync(junk);
  }, 30_000);

  test("bad usage exits 125 with help", async () => {
    expect((await runSandbox(["image", "load"], { cwd: work })).code).toBe(125);
    expect((await runSandbox(["image", "save", ROUNDTRIP], { cwd: work })).code).toBe(125);
    expect((await runSandbox(["image", "frobnicate"], { cwd: work })).code).toBe(125);
    const help = await runSandbox(["image", "--help"], { cwd: work });
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toContain("sandbox image load");
  }, 30_000);
});

describe("a missing image on a host without a registry fails fast", () => {
  test("run --image not/there:1 (the engine tries to pull) exits 125 within 10 seconds, saying how to bring it", async () => {
    const r = await runSandbox(["run", "--image", "not/there:1", "true"], { cwd: work, timeoutMs: 60_000 });
    expect(r.code).toBe(125);
    expect(r.ms).toBeLessThan(10_000);
    expect(r.stderr).toContain("not/there:1");
    expect(r.stderr).toContain("sandbox image load");
  }, 30_000);

  describe("a registry that accepts connections and never answers", () => {
    let server: Server;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      server = createServer((socket) => {
        sockets.add(socket);
        socket.on("error", () => {});
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    });
    afterAll(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });

    // Docker alone waits 25 s here (TLS, then plain HTTP), Podman over 80 s.
    test("fails within 10 seconds, not after the engine's own timeouts", async () => {
      const port = (server.address() as { port: number }).port;
      const r = await runSandbox(["run", "--image", `localhost:${port}/silent/image:1`, "true"], { cwd: work, timeoutMs: 60_000 });
      expect(r.code).toBe(125);
      expect(r.ms).toBeLessThan(10_000);
      expect(r.stderr).toContain("sandbox image load");
    }, 30_000);
  });
});
