/**
 * scripts/lint-src.ts keeps src/ free of Bun-only APIs (so `deno run` and
 * any other runtime can load it), keeps imports in the layer order and keeps
 * the import graph free of cycles. Run it on throw-away trees with deliberate
 * violations, and on the real src/.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "sandbox-lint-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function lint(...dirs: string[]) {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts/lint-src.ts"), ...dirs], { cwd: ROOT, stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  return { code: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

function tree(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** A tree laid out like the repository: FILES are paths under <tmp>/NAME/src; returns that src. */
function srcTree(name: string, files: Record<string, string>): string {
  return join(tree(name, Object.fromEntries(Object.entries(files).map(([p, t]) => [`src/${p}`, t]))), "src");
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

  test("the real src/ is clean: no Bun API use, no upward import, no import cycle", () => {
    const r = lint();
    expect(r.out).toContain("clean");
    expect(r.code).toBe(0);
  });
});

describe("lint-src: layers and cycles", () => {
  test("an upward import fails, naming both files, the line and the allowed layers", () => {
    const src = srcTree("upward", {
      "main.ts": 'import { a } from "./core/a.ts";\nexport const x = a;\n',
      "core/a.ts": '// a comment\nimport { b } from "../cli/b.ts";\nexport const a = b;\n',
      "cli/b.ts": "export const b = 1;\n",
    });
    const r = lint(src);
    expect(r.code).toBe(1);
    expect(r.out).toContain("src/core/a.ts:2: imports src/cli/b.ts: layer core may not import layer cli (allowed: nothing outside core)");
    expect(r.out).not.toContain("clean");
  });

  test("a type-only upward import and an `export ... from` upward fail too", () => {
    const src = srcTree("type-only", {
      "engine/a.ts": 'import type { B } from "../cli/b.ts";\nexport type A = B;\n',
      "engine/c.ts": 'export {\n  type B,\n} from "../config/d.ts";\n',
      "cli/b.ts": "export type B = number;\n",
      "config/d.ts": "export type B = number;\n",
    });
    const r = lint(src);
    expect(r.code).toBe(1);
    expect(r.out).toContain("src/engine/a.ts:1: imports src/cli/b.ts: layer engine may not import layer cli (allowed: core, term, security)");
    expect(r.out).toContain("src/engine/c.ts:1: imports src/config/d.ts: layer engine may not import layer config");
  });

  test("a dynamic import upward fails; one in a string or a comment does not count", () => {
    const src = srcTree("dynamic", {
      "term/a.ts": [
        "export async function f() {",
        '  const s = `import("../cli/x.ts")`; // import("../cli/y.ts")',
        '  return (await import("../cli/b.ts")).b + s;',
        "}",
        "",
      ].join("\n"),
      "cli/b.ts": "export const b = 1;\n",
    });
    const r = lint(src);
    expect(r.code).toBe(1);
    expect(r.out).toContain("src/term/a.ts:3: imports src/cli/b.ts: layer term may not import layer cli (allowed: core)");
    expect(r.out).not.toMatch(/cli\/[xy]\.ts/);
  });

  test("a cycle fails, reported once and named file by file", () => {
    const src = srcTree("cycle", {
      "core/a.ts": 'import { b } from "./b.ts";\nexport const a = () => b();\n',
      "core/b.ts": 'import type { A } from "./a.ts";\nexport const b = (): A | 1 => 1;\nexport type B = 1;\n',
    });
    const r = lint(src);
    expect(r.code).toBe(1);
    expect(r.out).toContain("src/core/a.ts:1: import cycle: src/core/a.ts -> src/core/b.ts -> src/core/a.ts");
    expect(r.out.match(/import cycle:/g)).toHaveLength(1);
    expect(r.out).not.toMatch(/may not import/);
  });

  test("a folder missing from the layer table, or a stray top-level file, fails", () => {
    const src = srcTree("unknown", { "main.ts": "export {};\n", "util.ts": "export {};\n", "plugins/p.ts": "export {};\n" });
    const r = lint(src);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/src\/util\.ts: not in a layer/);
    expect(r.out).toMatch(/src\/plugins: layer plugins is not in LAYERS/);
  });

  test("a clean layered tree passes: allowed layers, own folder, json, node: and npm imports, a lazy import from main.ts", () => {
    const src = srcTree("clean", {
      "main.ts": 'import { run } from "./cli/app.ts";\nexport const go = async () => (await import("./engine/e.ts")).e + run();\n',
      "cli/app.ts": 'import { c } from "./commands/c.ts";\nimport { cfg } from "../config/load.ts";\nexport const run = () => c + cfg;\n',
      "cli/commands/c.ts": 'import { e } from "../../engine/e.ts";\nexport const c = e;\n',
      "config/load.ts": 'import { parse } from "yaml";\nimport { p } from "../security/s.ts";\nexport const cfg = String(parse("1")) + p;\n',
      "security/s.ts": 'import profile from "./profile.json" with { type: "json" };\nimport { k } from "../core/k.ts";\nexport const p = profile.x + k;\n',
      "security/profile.json": '{ "x": "y" }\n',
      "engine/e.ts": 'import { readFileSync } from "node:fs";\nimport type { K } from "../core/k.ts";\nexport const e: K = typeof readFileSync;\n',
      "core/k.ts": "export type K = string;\nexport const k = 'k';\n",
    });
    const r = lint(src);
    expect(r.out).toContain("lint-src: 7 files clean");
    expect(r.code).toBe(0);
  });
});
