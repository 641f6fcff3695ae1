/**
 * Release build: one folder, dist/release/sandbox-<version>/, holding one
 * executable per platform, reproducible archives, install.sh and a
 * SHA256SUMS file covering all of them. The folder is the release: copied
 * as it is (USB stick, web server) or uploaded as a GitHub release's assets,
 * and `sh install.sh` run from it installs from it (docs/release.md).
 *
 *   bun scripts/release.ts [--targets linux-x64,darwin-arm64] [--out DIR] [--verify]
 *
 *   --targets  a comma-separated subset of the names below (default: all)
 *   --out      where the release folder goes (default dist/release): DIR/sandbox-<version>/,
 *              emptied first; other versions' folders in DIR are left alone
 *   --verify   build every target a second time into a temporary directory and
 *              compare SHA-256s: exits 1 if any executable or archive differs
 *
 * Bun fetches the runtimes of the other platforms from the npm registry
 * (@oven/bun-<os>-<arch>) on first use and caches them, so only the first
 * release build on a machine needs the network.
 *
 * Archives are byte-reproducible: they are written here rather than by
 * tar/zip so that no host tool's version, user or clock leaks into them
 * (entries sorted, uid/gid 0, owner "root", mtime = the commit's date, gzip
 * header without name or time, like `gzip -n`). See docs/release.md.
 */
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { crc32, deflateRawSync } from "node:zlib";
import { buildFacts, compile, type BuildFacts } from "./build.ts";

export interface ReleaseTarget {
  /** Asset name suffix: sandbox-<name>[.exe]. */
  name: string;
  bunTarget: string;
  os: "linux" | "darwin" | "windows";
}

export const TARGETS: readonly ReleaseTarget[] = [
  { name: "linux-x64", bunTarget: "bun-linux-x64", os: "linux" },
  // For x64 CPUs without AVX2 (pre-Haswell, some VMs): the default build dies with SIGILL there.
  { name: "linux-x64-baseline", bunTarget: "bun-linux-x64-baseline", os: "linux" },
  { name: "linux-arm64", bunTarget: "bun-linux-arm64", os: "linux" },
  { name: "darwin-x64", bunTarget: "bun-darwin-x64", os: "darwin" },
  { name: "darwin-arm64", bunTarget: "bun-darwin-arm64", os: "darwin" },
  { name: "windows-x64", bunTarget: "bun-windows-x64", os: "windows" },
];

export function executableName(t: ReleaseTarget): string {
  return `sandbox-${t.name}${t.os === "windows" ? ".exe" : ""}`;
}

export function archiveName(t: ReleaseTarget): string {
  return `sandbox-${t.name}${t.os === "windows" ? ".zip" : ".tar.gz"}`;
}

/** The release folder inside --out: what install.sh's `--from DIR --version V` looks for. */
export function releaseDir(out: string, version: string): string {
  return join(out, `sandbox-${version}`);
}

/** The installer, copied unchanged into every release folder (and listed in its SHA256SUMS). */
export const INSTALLER = "install.sh";

// --- deterministic archives ---------------------------------------------------------

export interface ArchiveEntry {
  /** Path inside the archive; directories end with "/". */
  path: string;
  data?: Uint8Array;
  mode: number;
}

/** A ustar archive: sorted entries, uid/gid 0, owner root, one fixed mtime. */
export function tarBytes(entries: readonly ArchiveEntry[], mtime: number): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const isDir = entry.path.endsWith("/");
    const data = isDir ? Buffer.alloc(0) : Buffer.from(entry.data ?? new Uint8Array());
    const header = Buffer.alloc(512);
    const name = Buffer.from(entry.path, "utf8");
    if (name.length > 100) throw new Error(`tar: path too long for a plain ustar header: ${entry.path}`);
    name.copy(header, 0);
    const octal = (value: number, width: number, at: number) => header.write(`${value.toString(8).padStart(width - 1, "0")}\0`, at, "ascii");
    octal(entry.mode, 8, 100);
    octal(0, 8, 108); // uid
    octal(0, 8, 116); // gid
    octal(data.length, 12, 124);
    octal(mtime, 12, 136);
    header.write("        ", 148, "ascii"); // checksum is computed over spaces
    header.write(isDir ? "5" : "0", 156, "ascii");
    header.write("ustar\u000000", 257, "ascii");
    header.write("root", 265, "ascii");
    header.write("root", 297, "ascii");
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024)); // end-of-archive marker
  const body = Buffer.concat(blocks);
  // Pad to a whole 10 KiB record as tar(1) does, so `tar` never warns.
  return Buffer.concat([body, Buffer.alloc((10240 - (body.length % 10240)) % 10240)]);
}

/**
 * gzip with a header we write ourselves: no file name, mtime 0, OS "Unix",
 * exactly what `gzip -n` produces, whatever zlib build or host OS runs this.
 */
export function gzipBytes(data: Uint8Array): Buffer {
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0 /* XFL */, 3 /* OS: Unix */]);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([header, deflateRawSync(data, { level: 9 }), trailer]);
}

/** MS-DOS date and time (local fields, taken here in UTC so every builder agrees). */
function dosDateTime(unixSeconds: number): { time: number; date: number } {
  const d = new Date(Math.max(unixSeconds, 315532800) * 1000); // DOS time starts in 1980
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

/**
 * A zip archive without extra fields (no extended timestamps, no uid/gid),
 * entries sorted, one fixed DOS time: the same bytes on every build host.
 * "Made by Unix" with the mode in the external attributes, so unzip keeps
 * the executable bit.
 */
export function zipBytes(entries: readonly ArchiveEntry[], mtime: number): Buffer {
  const { time, date } = dosDateTime(mtime);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const isDir = entry.path.endsWith("/");
    const raw = isDir ? Buffer.alloc(0) : Buffer.from(entry.data ?? new Uint8Array());
    const packed = isDir ? raw : deflateRawSync(raw, { level: 9 });
    const method = isDir ? 0 : 8;
    const crc = crc32(raw) >>> 0;
    const name = Buffer.from(entry.path, "utf8");
    if (raw.length >= 0xffffffff || offset >= 0xffffffff) throw new Error("zip: entries over 4 GiB need zip64, which this writer does not do");
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // flags: names are UTF-8
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, spec 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((((isDir ? 0o040000 : 0o100000) | entry.mode) << 16 | (isDir ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    centrals.push(central, name);
    offset += local.length + name.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(centrals.length / 2, 8);
  end.writeUInt16LE(centrals.length / 2, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

// --- the release ---------------------------------------------------------------------

export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The archive of one target: a folder sandbox-<name>/ holding `sandbox` (or sandbox.exe). */
export function archiveFor(t: ReleaseTarget, executable: Uint8Array, mtime: number): Buffer {
  const dir = `sandbox-${t.name}/`;
  const entries: ArchiveEntry[] = [
    { path: dir, mode: 0o755 },
    { path: `${dir}sandbox${t.os === "windows" ? ".exe" : ""}`, data: executable, mode: 0o755 },
  ];
  return t.os === "windows" ? zipBytes(entries, mtime) : gzipBytes(tarBytes(entries, mtime));
}

/** The archives' fixed mtime: SOURCE_DATE_EPOCH if set, else the commit's date. */
export function releaseEpoch(facts: BuildFacts, env: Record<string, string | undefined> = process.env): number {
  if (env.SOURCE_DATE_EPOCH && /^\d+$/.test(env.SOURCE_DATE_EPOCH)) return Number(env.SOURCE_DATE_EPOCH);
  const parsed = Date.parse(facts.date);
  return Number.isFinite(parsed) ? Math.floor(parsed / 1000) : 0;
}

export interface BuiltAsset {
  target: ReleaseTarget;
  executable: string;
  executableBytes: number;
  executableSha256: string;
  archive: string;
  archiveBytes: number;
  archiveSha256: string;
}

/**
 * Copy what the release is made of (src/, package.json, tsconfig.json and
 * scripts/install.sh; node_modules linked) into a fresh directory. Every
 * target, and --verify's second build, compiles from this one snapshot: an
 * edit made to the working tree while a release runs would otherwise land in
 * some executables and not in others. The build does not depend on the
 * checkout's path, so the copy changes no byte.
 */
export function snapshotSources(root: string): string {
  const stage = mkdtempSync(join(tmpdir(), "sandbox-release-src-"));
  cpSync(join(root, "src"), join(stage, "src"), { recursive: true });
  for (const file of ["package.json", "tsconfig.json", `scripts/${INSTALLER}`]) cpSync(join(root, file), join(stage, file));
  symlinkSync(join(root, "node_modules"), join(stage, "node_modules"), "dir");
  return stage;
}

/**
 * Compile every target from `sourceRoot` into the release folder `out`,
 * archive each, add the installer (`installer`: scripts/install.sh) and write
 * SHA256SUMS over all of it.
 */
export async function release(
  targets: readonly ReleaseTarget[],
  out: string,
  facts: BuildFacts,
  sourceRoot: string,
  installer: string,
  log: (line: string) => void = () => {},
): Promise<BuiltAsset[]> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const epoch = releaseEpoch(facts);
  const built: BuiltAsset[] = [];
  const cwd = process.cwd();
  for (const t of targets) {
    const started = Date.now();
    const exePath = join(out, executableName(t));
    // compile() bundles src/main.ts relative to the working directory.
    process.chdir(sourceRoot);
    try {
      await compile(t.bunTarget, exePath, facts);
    } finally {
      process.chdir(cwd);
    }
    chmodSync(exePath, 0o755);
    const exe = readFileSync(exePath);
    const archive = archiveFor(t, exe, epoch);
    const archivePath = join(out, archiveName(t));
    writeFileSync(archivePath, archive);
    built.push({
      target: t,
      executable: executableName(t),
      executableBytes: exe.length,
      executableSha256: sha256(exe),
      archive: archiveName(t),
      archiveBytes: archive.length,
      archiveSha256: sha256(archive),
    });
    log(`built ${executableName(t)} and ${archiveName(t)} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  copyFileSync(installer, join(out, INSTALLER));
  chmodSync(join(out, INSTALLER), 0o755);
  writeFileSync(join(out, "SHA256SUMS"), sumsFile(built, { [INSTALLER]: sha256(readFileSync(join(out, INSTALLER))) }));
  return built;
}

/**
 * `sha256sum` format (two spaces), sorted by name, so `sha256sum -c SHA256SUMS`
 * checks everything; `extra` are further files by name (the installer).
 */
export function sumsFile(assets: readonly BuiltAsset[], extra: Readonly<Record<string, string>> = {}): string {
  const lines = assets.flatMap((a) => [`${a.executableSha256}  ${a.executable}`, `${a.archiveSha256}  ${a.archive}`]);
  for (const [name, hash] of Object.entries(extra)) lines.push(`${hash}  ${name}`);
  return `${lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1)).join("\n")}\n`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function sizeTable(assets: readonly BuiltAsset[]): string {
  const rows = [["target", "executable", "archive", "ratio"]];
  for (const a of assets) {
    rows.push([a.target.name, mib(a.executableBytes), `${mib(a.archiveBytes)} (${a.archive.endsWith(".zip") ? "zip" : "tar.gz"})`, `${((a.archiveBytes / a.executableBytes) * 100).toFixed(0)}%`]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")).join("\n");
}

/** Facts for a release: refuse to claim a commit the tree does not match. */
async function releaseFacts(): Promise<BuildFacts> {
  const facts = await buildFacts();
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.toString().trim();
  if (dirty && facts.commit !== "unknown") {
    console.warn("release: the working tree has uncommitted changes; the binaries say so in their commit (-dirty)");
    return { ...facts, commit: `${facts.commit}-dirty` };
  }
  return facts;
}

/** The asset this machine can run, to smoke-test the build (undefined when cross-building only). */
function hostTarget(): string | undefined {
  const arch = process.arch === "x64" ? "x64" : process.arch === "arm64" ? "arm64" : undefined;
  const os = process.platform === "linux" || process.platform === "darwin" ? process.platform : process.platform === "win32" ? "windows" : undefined;
  return arch && os ? `${os}-${arch}` : undefined;
}

if (import.meta.main) {
  const root = resolve(import.meta.dir, "..");
  process.chdir(root);
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: { targets: { type: "string" }, out: { type: "string" }, verify: { type: "boolean" } },
  });
  const wanted = values.targets?.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = wanted?.filter((name) => !TARGETS.some((t) => t.name === name)) ?? [];
  if (unknown.length) {
    console.error(`release: unknown target(s) ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.name).join(", ")}`);
    process.exit(2);
  }
  const targets = wanted ? TARGETS.filter((t) => wanted.includes(t.name)) : TARGETS;
  const facts = await releaseFacts();
  const out = releaseDir(resolve(values.out ?? "dist/release"), facts.version);
  console.log(`release: sandbox ${facts.version} (commit ${facts.commit}, ${facts.date}) for ${targets.map((t) => t.name).join(", ")}`);
  const stage = snapshotSources(root);
  process.on("exit", () => rmSync(stage, { recursive: true, force: true }));
  const installer = join(stage, "scripts", INSTALLER);
  const assets = await release(targets, out, facts, stage, installer, (line) => console.log(`  ${line}`));

  const host = assets.find((a) => a.target.name === hostTarget());
  if (host) {
    const probe = Bun.spawnSync([join(out, host.executable), "version", "--json"], { env: { ...process.env, DOCKER_HOST: "unix:///nonexistent" } });
    const client = JSON.parse(probe.stdout.toString() || "{}").client ?? {};
    if (client.version !== facts.version || client.commit !== facts.commit || client.built !== facts.date) {
      console.error(`release: ${host.executable} reports ${JSON.stringify(client)}, expected ${JSON.stringify(facts)}`);
      process.exit(1);
    }
    console.log(`  ${host.executable} runs and reports ${client.version} ${client.commit} ${client.built}`);
  }

  let failed = false;
  if (values.verify) {
    const again = mkdtempSync(join(tmpdir(), "sandbox-release-verify-"));
    try {
      const second = await release(targets, again, facts, stage, installer);
      for (const [i, a] of assets.entries()) {
        const b = second[i]!;
        const exeSame = a.executableSha256 === b.executableSha256;
        const arcSame = a.archiveSha256 === b.archiveSha256;
        if (!exeSame || !arcSame) failed = true;
        console.log(`  reproducible ${a.target.name}: executable ${exeSame ? "identical" : "DIFFERS"}, archive ${arcSame ? "identical" : "DIFFERS"}`);
      }
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  }

  console.log(`\n${sizeTable(assets)}\n`);
  console.log(`wrote ${assets.length * 2} assets, ${INSTALLER} and SHA256SUMS to ${out} (${mib(assets.reduce((n, a) => n + a.executableBytes + a.archiveBytes, 0))} in all)`);
  if (failed) {
    console.error("release: the second build differs from the first; see docs/release.md");
    process.exit(1);
  }
}
