/**
 * The release folder as `bun run release` writes it (scripts/release.ts, one
 * target: the host's), and scripts/install.sh installing from it, from
 * copies of it and from hand-made folders standing in for a release page
 * (and the same over HTTP).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };

const ROOT = resolve(import.meta.dir, "../..");
const INSTALL = join(ROOT, "scripts/install.sh");
const work = mkdtempSync(join(tmpdir(), "sandbox-install-"));
/** What `bun run release --out` was given, and the release folder it wrote in it. */
const dist = join(work, "dist");
const release = join(dist, `sandbox-${pkg.version}`);
const cpuHasAvx2 = process.arch !== "x64" || /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
/** The release target and asset install.sh must pick on this machine. */
const hostTarget = `linux-${process.arch === "arm64" ? "arm64" : "x64"}${cpuHasAvx2 ? "" : "-baseline"}`;
const hostAsset = `sandbox-${hostTarget}`;
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

/** Run an installer (scripts/install.sh unless `script` says which), asynchronously so the HTTP test's server in this process can answer. */
async function install(args: string[], env: Record<string, string> = {}, script = INSTALL) {
  // `sh`, not bash: the installer must be plain POSIX (dash on Debian).
  const child = Bun.spawn(["sh", script, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "home"), ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

function versionOf(bin: string): string {
  return spawnSync(bin, ["--version"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } }).stdout;
}

beforeAll(async () => {
  if (process.platform !== "linux") throw new Error("these tests build and run the Linux asset");
  // The real release script, for the host's target only (one compile, not six).
  const built = Bun.spawn([process.execPath, join(ROOT, "scripts/release.ts"), "--targets", hostTarget, "--out", dist], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(built.stdout).text(), new Response(built.stderr).text(), built.exited]);
  if (code !== 0) throw new Error(`scripts/release.ts failed (${code}):\n${out}\n${err}`);
  exe = readFileSync(join(release, hostAsset));
}, 180_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("release output", () => {
  test("one folder sandbox-V/ with the executable, its archive, install.sh and SHA256SUMS", () => {
    expect(readdirSync(dist)).toEqual([`sandbox-${pkg.version}`]);
    expect(readdirSync(release).sort()).toEqual(["SHA256SUMS", "install.sh", hostAsset, `${hostAsset}.tar.gz`]);
    // The installer ships unchanged.
    expect(readFileSync(join(release, "install.sh"), "utf8")).toBe(readFileSync(INSTALL, "utf8"));
    const archive = spawnSync("tar", ["tzf", join(release, `${hostAsset}.tar.gz`)], { encoding: "utf8" });
    expect(archive.stdout.split("\n").filter(Boolean)).toEqual([`${hostAsset}/`, `${hostAsset}/sandbox`]);
  });

  test("SHA256SUMS lists every other file in the folder and sha256sum -c accepts it", () => {
    const sums = readFileSync(join(release, "SHA256SUMS"), "utf8");
    const listed = sums.trimEnd().split("\n").map((line) => /^([0-9a-f]{64}) {2}(\S+)$/.exec(line));
    expect(listed.every(Boolean)).toBe(true);
    expect(listed.map((m) => m![2]).sort()).toEqual(readdirSync(release).filter((f) => f !== "SHA256SUMS").sort());
    for (const m of listed) expect(sha256(readFileSync(join(release, m![2]!)))).toBe(m![1]!);
    const check = spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: release, encoding: "utf8" });
    expect(check.status).toBe(0);
    expect(check.stdout).toContain(`${hostAsset}: OK`);
    expect(check.stdout).toContain("install.sh: OK");
  });

  test("install.sh --from <the --out dir> --version V installs sandbox-V/'s executable, which prints V", async () => {
    const prefix = join(work, "rel-p1");
    const r = await install(["--from", dist, "--version", pkg.version, "--prefix", prefix]);
    expect(r.stderr).toContain(`fetching ${hostAsset} from ${release}`);
    expect(r.code).toBe(0);
    const bin = join(prefix, "bin", "sandbox");
    expect(sha256(readFileSync(bin))).toBe(sha256(exe));
    expect(versionOf(bin)).toBe(`sandbox ${pkg.version}\n`);
  }, 60_000);

  test("the folder's own install.sh installs from the folder it is in, with no --from", async () => {
    const copy = join(work, "usb", `sandbox-${pkg.version}`); // the folder copied elsewhere
    cpSync(release, copy, { recursive: true });
    const prefix = join(work, "rel-p2");
    const r = await install(["--prefix", prefix], {}, join(copy, "install.sh"));
    expect(r.code).toBe(0);
    expect(versionOf(join(prefix, "bin", "sandbox"))).toBe(`sandbox ${pkg.version}\n`);
    // and --from naming the release folder itself, with or without --version
    for (const [i, extra] of [[], ["--version", pkg.version]].entries()) {
      const p = join(work, `rel-p3-${i}`);
      expect((await install(["--from", copy, "--prefix", p, ...extra])).code).toBe(0);
      expect(versionOf(join(p, "bin", "sandbox"))).toBe(`sandbox ${pkg.version}\n`);
    }
  }, 60_000);

  test("a tampered executable in the release folder is refused by its checksum", async () => {
    const copy = join(work, "tampered-dist", `sandbox-${pkg.version}`);
    cpSync(release, copy, { recursive: true });
    const bytes = Buffer.from(exe);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff;
    writeFileSync(join(copy, hostAsset), bytes);
    const prefix = join(work, "rel-p4");
    const r = await install(["--from", join(work, "tampered-dist"), "--version", pkg.version, "--prefix", prefix]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`checksum mismatch for ${hostAsset}`);
    expect(existsSync(join(prefix, "bin", "sandbox"))).toBe(false);
  }, 60_000);
});

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

  test("--version picks that release's folder sandbox-V/ and must match what the executable reports", async () => {
    const versions = join(work, "versions");
    makeRelease(join(versions, `sandbox-${pkg.version}`), { [hostAsset]: exe });
    makeRelease(join(versions, "sandbox-9.9.9"), { [hostAsset]: exe }); // mislabelled
    const ok = await install(["--prefix", join(work, "p5"), "--from", versions, "--version", `v${pkg.version}`]);
    expect(ok.code).toBe(0);
    const wrong = await install(["--prefix", join(work, "p6"), "--from", versions, "--version", "9.9.9"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("asked for version 9.9.9");
    expect(existsSync(join(work, "p6", "bin", "sandbox"))).toBe(false);
    const missing = await install(["--prefix", join(work, "p6"), "--from", versions, "--version", "1.2.3"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("sandbox-1.2.3/");
  }, 60_000);

  test("downloads over HTTP too (curl or wget)", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      // /rel/ mirrors the release script's --out directory.
      async fetch(req) {
        const name = new URL(req.url).pathname.replace(/^\/rel\//, "");
        const file = Bun.file(join(dist, name));
        return /^([\w.-]+\/)?[\w.-]+$/.test(name) && !name.includes("..") && (await file.exists()) ? new Response(file) : new Response("not found", { status: 404 });
      },
    });
    try {
      const prefix = join(work, "p7");
      const r = await install(["--prefix", prefix, "--from", `http://127.0.0.1:${server.port}/rel/sandbox-${pkg.version}`]);
      expect(r.code).toBe(0);
      expect(sha256(readFileSync(join(prefix, "bin", "sandbox")))).toBe(sha256(exe));
      const versioned = await install(["--prefix", join(work, "p7v"), "--from", `http://127.0.0.1:${server.port}/rel`, "--version", pkg.version]);
      expect(versioned.stderr).toContain(`/rel/sandbox-${pkg.version}`);
      expect(versioned.code).toBe(0);
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
