import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clearNewSetIdBits, setIdWarnings } from "../../src/workspace/setid.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), "sandbox-setid-"));
  dirs.push(d);
  return d;
}
const mode = (p: string) => statSync(p).mode & 0o7777;

describe("setuid/setgid bits the run set (bind mode)", () => {
  test("are cleared on files changed since the start, at any depth and in folders other walks skip; one warning names them", async () => {
    const ws = temp();
    const outside = temp();
    // The user's own setuid file, from before the run: left alone.
    writeFileSync(join(ws, "old-tool"), "x");
    chmodSync(join(ws, "old-tool"), 0o4755);
    await Bun.sleep(1500);
    const started = Date.now();
    for (const d of ["node_modules/p/bin", ".git/objects", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r"]) mkdirSync(join(ws, d), { recursive: true });
    const made = ["sh", "node_modules/p/bin/x", ".git/objects/y", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/deep", "grp", "evil\x1b[2J"];
    for (const f of made) writeFileSync(join(ws, f), "#!/bin/sh\n");
    for (const f of made) chmodSync(join(ws, f), f === "grp" ? 0o2750 : 0o4755);
    // A symlink to a setuid file outside is not followed.
    writeFileSync(join(outside, "target"), "x");
    chmodSync(join(outside, "target"), 0o4755);
    symlinkSync(join(outside, "target"), join(ws, "link"));
    // A setgid folder is not a file: left alone.
    mkdirSync(join(ws, "shared"));
    chmodSync(join(ws, "shared"), 0o2775);

    const result = await clearNewSetIdBits(ws, started);
    expect(result.failed).toEqual([]);
    expect(result.truncated).toBe(false);
    expect(result.cleared).toEqual([...made].sort());
    for (const f of made) expect(mode(join(ws, f))).toBe(f === "grp" ? 0o750 : 0o755);
    expect(mode(join(ws, "old-tool"))).toBe(0o4755);
    expect(mode(join(outside, "target"))).toBe(0o4755);
    expect(mode(join(ws, "shared"))).toBe(0o2775);

    const lines = setIdWarnings(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("the command made 6 setuid/setgid file(s) in the workspace; the bits were removed:");
    expect(lines[0]).toContain("evil\\x1b[2J");
    expect(lines[0]).not.toContain("\x1b");
  });

  test("a walk cut short says so", async () => {
    const ws = temp();
    for (let i = 0; i < 5; i++) writeFileSync(join(ws, `f${i}`), "");
    const result = await clearNewSetIdBits(ws, Date.now(), { maxEntries: 3 });
    expect(result.truncated).toBe(true);
    expect(setIdWarnings(result).join("\n")).toContain("were not checked");
  });

  test("nothing to say when the run made none", async () => {
    const ws = temp();
    writeFileSync(join(ws, "plain"), "");
    expect(setIdWarnings(await clearNewSetIdBits(ws, Date.now() - 10_000))).toEqual([]);
  });
});
