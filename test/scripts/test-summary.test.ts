/**
 * scripts/test ends with why each test failed, not only its name: CI is often
 * read by its tail alone. Run real `bun test` on a throw-away file with a
 * failing expect and a thrown fs error (retried once, as the integration
 * passes are), and read its log with scripts/test's own failure_details.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "sandbox-test-summary-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** scripts/test's failure_details function, as the script defines it. */
function failureDetails(): string {
  const script = readFileSync(join(ROOT, "scripts/test"), "utf8");
  const fn = script.match(/^failure_details\(\) \{\n[^]*?\n\}\n/m)?.[0];
  if (!fn) throw new Error("scripts/test has no failure_details function");
  return fn;
}

test("each failing test is followed by its failing line, its error and its first frame; passing tests and bun's closing list add nothing", () => {
  writeFileSync(
    join(work, "sample.test.ts"),
    [
      'import { expect, test } from "bun:test";',
      'import { lstatSync } from "node:fs";',
      'test("passes", () => expect(1).toBe(1));',
      'test("compares", () => {',
      '  console.log("a line the test logged");',
      "  expect({ a: 1 }.a).toBe(2);",
      "});",
      'test("throws", () => { lstatSync("/nonexistent-sandbox-test/q"); });',
      "",
    ].join("\n"),
  );
  const log = join(work, "log");
  const ran = Bun.spawnSync(["sh", "-c", `'${process.execPath}' test ./sample.test.ts --retry=1 >log 2>&1`], { cwd: work, env: { ...process.env, NO_COLOR: "1" } });
  expect(ran.exitCode).toBe(1);
  const r = Bun.spawnSync(["bash", "-c", `${failureDetails()}\nsed 's/\\x1b\\[[0-9;]*m//g' "$1" | failure_details`, "bash", log], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  const out = r.stdout.toString();
  const blocks = out.split(/^ {2}\(fail\) /m).filter(Boolean);
  expect(blocks.map((b) => b.split("\n")[0]!.replace(/ \[.*$/, ""))).toEqual(["compares (attempt 2)", "throws (attempt 2)"]);
  expect(blocks[0]).toContain("expect({ a: 1 }.a).toBe(2)");
  expect(blocks[0]).toContain("Expected: 2");
  expect(blocks[0]).toContain("Received: 1");
  expect(blocks[0]).toContain("sample.test.ts:6:");
  expect(blocks[0]).not.toContain("a line the test logged");
  expect(blocks[1]).toContain('lstatSync("/nonexistent-sandbox-test/q")');
  expect(blocks[1]).toContain("ENOENT: no such file or directory, lstat '/nonexistent-sandbox-test/q'");
  expect(blocks[1]).toContain("sample.test.ts:8:");
  expect(out).not.toContain("passes");
  expect(out.split("\n").length).toBeLessThan(60);
});
