/**
 * scripts/lint-src.ts keeps src/ free of Bun-only APIs (so `deno run` and
 * any other runtime can load it). Run it on a throw-away tree with
 * deliberate violations, and on the real src/.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "sandbox-lint-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function lint(...dirs: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/lint-src.ts"), ...dirs], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function tree(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe("lint-src", () => {
  test("Bun.file and a bun:sqlite import fail the lint, each named with its file and line", () => {
    const dir = tree("bad", {
      "main.ts": 'import { helper } from "./engine/read.ts";\nexport const x = helper();\n',
      "engine/read.ts": '// Bun.file in a comment is fine\nexport async function helper() {\n  return await Bun.file("/etc/hostname").text();\n}\n',
      "core/store.ts": 'import x from "bun:sqlite";\nexport const db = x;\n',
    });
    const r = lint(dir);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/engine\/read\.ts:3:/);
    expect(r.out).toMatch(/core\/store\.ts:1:/);
    expect(r.out).not.toMatch(/main\.ts:/);
    expect(r.out).not.toMatch(/read\.ts:1:/); // the comment
  });

  test("a tree using only node: and web APIs passes", () => {
    const dir = tree("good", {
      "main.ts": 'import { readFileSync } from "node:fs";\nexport const text = readFileSync("/etc/hostname", "utf8");\nexport const bundle = { Bunny: 1 }.Bunny;\n',
    });
    const r = lint(dir);
    expect(r.out).toContain("clean");
    expect(r.code).toBe(0);
  });

  test("the real src/ passes", () => {
    const r = lint();
    expect(r.out).toContain("clean");
    expect(r.code).toBe(0);
  });
});
