/**
 * scripts/install.sh against a local directory standing in for the release
 * page (and the same directory over HTTP): the host's executable is built
 * into it with a generated SHA256SUMS, as scripts/release.ts lays it out.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compile } from "../../scripts/build.ts";
import pkg from "../../package.json" with { type: "json" };

const ROOT = resolve(import.meta.dir, "../..");
const INSTALL = join(ROOT, "scripts/install.sh");
const work = mkdtempSync(join(tmpdir(), "sandbox-install-"));
const release = join(work, "release");
const cpuHasAvx2 = process.arch !== "x64" || /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
/** The asset install.sh must pick on this machine. */
const hostAsset = `sandbox-linux-${process.arch === "arm64" ? "arm64" : "x64"}${cpuHasAvx2 ? "" : "-baseline"}`;
let exe: Buffer;

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A release folder: the given assets plus their SHA256SUMS (optionally leaving some out). */
function makeRelease(dir: string, assets: Record<string, Buffer>, omitFromSums: string[] = []): void {
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (const [name, data] of Object.entries(assets)) {
    writeFileSync(join(dir, name), data);
    chmodSync(join(dir, name), 0o755);
    if (!omitFromSums.includes(name)) lines.push(`${sha256(data)}  ${name}`);
  }
  writeFileSync(join(dir, "SHA256SUMS"), `${lines.sort().join("\n")}\n`);
}

/** Run the installer (asynchronously, so the HTTP test's server in this process can answer). */
async function install(args: string[], env: Record<string, string> = {}) {
  // `sh`, not bash: the installer must be plain POSIX (dash on Debian).
  const child = Bun.spawn(["sh", INSTALL, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "home"), ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  if (process.platform !== "linux") throw new Error("these tests build and run the Linux asset");
  // Built here rather than copied from dist/sandbox, which another build may be rewriting.
  const out = join(work, "build", "sandbox");
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    await compile(undefined, out);
  } finally {
    process.chdir(cwd);
  }
  exe = readFileSync(out);
  makeRelease(release, { [hostAsset]: exe });
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("install.sh", () => {
  test("installs the host's executable into --prefix/bin after checking it", async () => {
    const prefix = join(work, "p1");
    const r = await install(["--prefix", prefix, "--from", release]);
    expect(r.stderr).toContain(`(${hostAsset})`);
    expect(r.code).toBe(0);
    const bin = join(prefix, "bin", "sandbox");
    expect(sha256(readFileSync(bin))).toBe(sha256(exe));
    expect(readdirSync(join(prefix, "bin"))).toEqual(["sandbox"]);
    const v = spawnSync(bin, ["--version"], { encoding: "utf8" });
    expect(v.stdout).toBe(`sandbox ${pkg.version}\n`);
  }, 60_000);

  test("defaults to ~/.local/bin", async () => {
    const home = join(work, "home-default");
    const r = await install(["--from", release], { HOME: home });
    expect(r.code).toBe(0);
    expect(existsSync(join(home, ".local/bin/sandbox"))).toBe(true);
    expect(r.stderr).toContain("not on your PATH");
  }, 60_000);

  test("a tampered asset is refused, nothing is installed and the old sandbox stays", async () => {
    const tampered = join(work, "tampered");
    makeRelease(tampered, { [hostAsset]: exe });
    const bytes = Buffer.from(exe);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff; // after SHA256SUMS was written
    writeFileSync(join(tampered, hostAsset), bytes);
    const prefix = join(work, "p2");
    mkdirSync(join(prefix, "bin"), { recursive: true });
    writeFileSync(join(prefix, "bin", "sandbox"), "old\n");
    const r = await install(["--prefix", prefix, "--from", tampered]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`checksum mismatch for ${hostAsset}`);
    expect(r.stderr).toContain("nothing was installed");
    expect(readFileSync(join(prefix, "bin", "sandbox"), "utf8")).toBe("old\n");
    expect(readdirSync(join(prefix, "bin"))).toEqual(["sandbox"]);
  }, 60_000);

  test("an asset missing from SHA256SUMS is refused", async () => {
    const unlisted = join(work, "unlisted");
    makeRelease(unlisted, { [hostAsset]: exe }, [hostAsset]);
    const prefix = join(work, "p3");
    const r = await install(["--prefix", prefix, "--from", unlisted]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`SHA256SUMS has no line for ${hostAsset}`);
    expect(existsSync(join(prefix, "bin", "sandbox"))).toBe(false);
  }, 60_000);

  test("a CPU without AVX2 gets the baseline build", async () => {
    if (process.arch !== "x64") return; // the baseline build exists for x64 only
    const both = join(work, "both");
    makeRelease(both, { "sandbox-linux-x64": exe, "sandbox-linux-x64-baseline": exe });
    const cpuinfo = join(work, "cpuinfo-old");
    writeFileSync(cpuinfo, "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n");
    const r = await install(["--prefix", join(work, "p4"), "--from", both], { SANDBOX_INSTALL_CPUINFO: cpuinfo });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("(sandbox-linux-x64-baseline)");
  }, 60_000);

  test("--version picks that release's folder and must match what the executable reports", async () => {
    const versions = join(work, "versions");
    makeRelease(join(versions, pkg.version), { [hostAsset]: exe });
    makeRelease(join(versions, "9.9.9"), { [hostAsset]: exe }); // mislabelled
    const ok = await install(["--prefix", join(work, "p5"), "--from", versions, "--version", `v${pkg.version}`]);
    expect(ok.code).toBe(0);
    const wrong = await install(["--prefix", join(work, "p6"), "--from", versions, "--version", "9.9.9"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("asked for version 9.9.9");
    expect(existsSync(join(work, "p6", "bin", "sandbox"))).toBe(false);
  }, 60_000);

  test("downloads over HTTP too (curl or wget)", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const name = new URL(req.url).pathname.replace(/^\/rel\//, "");
        const file = Bun.file(join(release, name));
        return /^[\w.-]+$/.test(name) && (await file.exists()) ? new Response(file) : new Response("not found", { status: 404 });
      },
    });
    try {
      const prefix = join(work, "p7");
      const r = await install(["--prefix", prefix, "--from", `http://127.0.0.1:${server.port}/rel`]);
      expect(r.code).toBe(0);
      expect(sha256(readFileSync(join(prefix, "bin", "sandbox")))).toBe(sha256(exe));
      const missing = await install(["--prefix", join(work, "p8"), "--from", `http://127.0.0.1:${server.port}/nothing-here`]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("could not download");
      expect(existsSync(join(work, "p8"))).toBe(false);
    } finally {
      server.stop(true);
    }
  }, 60_000);

  test("bad usage exits 2", async () => {
    expect((await install(["--bogus"])).code).toBe(2);
    expect((await install(["--prefix"])).code).toBe(2);
  }, 60_000);
});
