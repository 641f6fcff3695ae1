/**
 * Lint: the code under src/ must run on any JS runtime the build targets, so
 * it may not use Bun's globals (`Bun.`) or import Bun's modules (`"bun"`,
 * `"bun:*"`). Tests and scripts may. Prints each offending line and exits 1.
 *
 *   bun scripts/lint-src.ts [DIR...]   (default: src)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const SOURCE = /\.(?:[cm]?[jt]sx?)$/;

const RULES: Array<{ re: RegExp; why: string }> = [
  { re: /(?<![\w$.])Bun\s*(?:\.|\?\.|\[)/, why: "uses the Bun global" },
  { re: /\bfrom\s*["']bun(?::[^"']*)?["']/, why: "imports a Bun module" },
  { re: /\bimport\s*(?:\(\s*)?["']bun(?::[^"']*)?["']/, why: "imports a Bun module" },
  { re: /\brequire\s*\(\s*["']bun(?::[^"']*)?["']/, why: "requires a Bun module" },
];

function* files(path: string): Generator<string> {
  const st = statSync(path);
  if (st.isFile()) {
    if (SOURCE.test(path)) yield path;
    return;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    yield* files(join(path, name));
  }
}

/** The line without a trailing `//` comment (good enough: no string parsing), or "" for comment lines. */
function code(line: string): string {
  const t = line.trimStart();
  if (t.startsWith("//") || t.startsWith("*") || t.startsWith("/*")) return "";
  const i = line.indexOf("//");
  return i >= 0 && !/["'`][^"'`]*\/\/[^"'`]*["'`]/.test(line) ? line.slice(0, i) : line;
}

const dirs = process.argv.slice(2);
let bad = 0;
let scanned = 0;
for (const dir of dirs.length ? dirs : ["src"]) {
  for (const file of files(resolve(ROOT, dir))) {
    scanned++;
    const lines = readFileSync(file, "utf8").split("\n");
    lines.forEach((line, i) => {
      const text = code(line);
      for (const rule of RULES) {
        if (rule.re.test(text)) {
          bad++;
          console.error(`${relative(ROOT, file)}:${i + 1}: ${rule.why}: ${line.trim()}`);
          break;
        }
      }
    });
  }
}

if (bad) {
  console.error(`lint-src: ${bad} offending line(s); src/ must not depend on Bun APIs`);
  process.exit(1);
}
console.log(`lint-src: ${scanned} files clean`);
