/**
 * Lint src/ for three things. Prints each finding as `FILE:LINE: ...` and
 * exits 1 on any.
 *
 *  1. Bun APIs: the code under src/ must run on any JS runtime the build
 *     targets, so it may not use Bun's globals (`Bun.`) or import Bun's
 *     modules (`"bun"`, `"bun:*"`). Tests and scripts may.
 *  2. Layers: an import must follow LAYERS below (a lower layer never imports
 *     a higher one).
 *  3. Cycles: no two files under src/ may import each other, directly or
 *     through others.
 *
 * Imports counted for 2 and 3: static imports, `export ... from`, `import
 * type` (and `import("x")` types), and dynamic `import("x")` with a literal
 * path. Only relative specifiers are followed (they carry their extension;
 * a .json file belongs to the folder it is in); bare ones (node:, npm) are not.
 *
 *   bun scripts/lint-src.ts [DIR...]   (default: src)
 *
 * Each DIR is a source root laid out like src/: its top-level folders are the
 * layers and its main.ts the entry (a single file only gets the Bun check). Files are named relative to DIR's parent
 * (so `src/...` for the default).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";

/**
 * The layer order, by importing layer: which other layers (folders of src/)
 * it may import. A layer may always import its own folder; `main.ts`, the
 * entry, may import anything. The order is cli -> config -> core and
 * cli -> engine -> core (with term, security, egress and workspace as the
 * leaves beside them): lower layers never import higher ones, so core stays
 * pure and each layer can be read, tested and reused without the ones above.
 * A new folder under src/ must be placed here, or the lint fails.
 */
const LAYERS: Record<string, readonly string[]> = {
  cli: ["config", "core", "engine", "egress", "security", "term", "workspace"],
  config: ["core", "security", "egress"],
  engine: ["core", "term", "security"],
  egress: ["core", "engine"],
  workspace: ["core"],
  term: ["core"],
  security: ["core"],
  core: [],
};
const ENTRY = "main.ts";

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

type Import = { spec: string; line: number };

/** Every module specifier the file imports, from its syntax tree (so strings and comments never count). */
function importsOf(file: string, text: string): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const out: Import[] = [];
  const add = (node: ts.Node, spec: ts.Node | undefined) => {
    if (spec && ts.isStringLiteralLike(spec)) {
      out.push({ spec: spec.text, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The file a relative specifier names (as written, else with .ts or /index.ts), or the path as written. */
function resolveSpec(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const p of [base, `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  return base;
}

/** The layer of a file under root: its top-level folder, ENTRY for root/main.ts, undefined for anything else. */
function layerOf(root: string, file: string): string | undefined {
  const parts = relative(root, file).split(sep);
  if (parts[0] === ".." || parts[0] === "") return undefined;
  if (parts.length === 1) return parts[0] === ENTRY ? ENTRY : undefined;
  return parts[0];
}

/** One cycle per uncovered edge of each strongly connected component, each cycle once, starting at its smallest file. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const comps: string[][] = [];
  let next = 0;
  const strong = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      comps.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strong(v);

  const found: string[][] = [];
  const seen = new Set<string>();
  for (const comp of comps) {
    const inComp = new Set(comp);
    if (comp.length === 1 && !graph.get(comp[0]!)?.has(comp[0]!)) continue;
    const covered = new Set<string>();
    for (const u of comp) {
      for (const v of [...(graph.get(u) ?? [])].sort()) {
        if (!inComp.has(v) || covered.has(`${u}\0${v}`)) continue;
        // Shortest path v ~> u inside the component closes the cycle u -> v ~> u.
        const prev = new Map<string, string>([[v, v]]);
        const queue = [v];
        while (queue.length && !prev.has(u)) {
          const x = queue.shift()!;
          for (const y of [...(graph.get(x) ?? [])].sort()) {
            if (inComp.has(y) && !prev.has(y)) {
              prev.set(y, x);
              queue.push(y);
            }
          }
        }
        const back: string[] = []; // u, prev(u), ... down to (not including) v
        for (let x = u; x !== v; x = prev.get(x)!) back.push(x);
        const ring = u === v ? [u] : [u, v, ...back.slice(1).reverse()]; // u -> v -> ... -> (u)
        for (let i = 0; i < ring.length; i++) covered.add(`${ring[i]}\0${ring[(i + 1) % ring.length]}`);
        const start = ring.indexOf([...ring].sort()[0]!);
        const canon = [...ring.slice(start), ...ring.slice(0, start)];
        const key = canon.join("\0");
        if (seen.has(key)) continue;
        seen.add(key);
        found.push([...canon, canon[0]!]);
      }
    }
  }
  return found;
}

const dirs = process.argv.slice(2);
const counts = { bun: 0, layer: 0, cycle: 0 };
let scanned = 0;
for (const dir of dirs.length ? dirs : ["src"]) {
  const root = resolve(ROOT, dir);
  const base = dirname(root);
  const show = (file: string) => relative(base, file);
  const graph = new Map<string, Set<string>>();
  const lineOf = new Map<string, number>(); // "from\0to" -> line of the first such import
  const unknown = new Set<string>();
  const layered = statSync(root).isDirectory(); // a single file given alone has no layers to check

  for (const file of files(root)) {
    scanned++;
    const text = readFileSync(file, "utf8");
    text.split("\n").forEach((line, i) => {
      const t = code(line);
      for (const rule of RULES) {
        if (rule.re.test(t)) {
          counts.bun++;
          console.error(`${show(file)}:${i + 1}: ${rule.why}: ${line.trim()}`);
          break;
        }
      }
    });

    if (!layered) continue;
    const from = layerOf(root, file);
    if (!from) {
      counts.layer++;
      console.error(`${show(file)}: not in a layer: only ${ENTRY} sits at the top, the rest in the folders of LAYERS (scripts/lint-src.ts)`);
    } else if (from !== ENTRY && !(from in LAYERS) && !unknown.has(from)) {
      unknown.add(from);
      counts.layer++;
      console.error(`${show(join(root, from))}: layer ${from} is not in LAYERS of scripts/lint-src.ts; place it in the layer order`);
    }
    const edges = new Set<string>();
    graph.set(file, edges);
    for (const { spec, line } of importsOf(file, text)) {
      if (!spec.startsWith("./") && !spec.startsWith("../")) continue;
      const target = resolveSpec(file, spec);
      edges.add(target);
      if (!lineOf.has(`${file}\0${target}`)) lineOf.set(`${file}\0${target}`, line);
      if (!from || from === ENTRY || !(from in LAYERS)) continue;
      const to = layerOf(root, target);
      if (to === from || (to && LAYERS[from]!.includes(to))) continue;
      counts.layer++;
      const allowed = LAYERS[from]!.length ? LAYERS[from]!.join(", ") : `nothing outside ${from}`;
      const what = to ? `layer ${from} may not import layer ${to}` : `layer ${from} may not import outside the layers`;
      console.error(`${show(file)}:${line}: imports ${show(target)}: ${what} (allowed: ${allowed})`);
    }
  }

  // Only files under the root take part in cycles (a missing target has no edges).
  for (const ring of cycles(graph)) {
    counts.cycle++;
    console.error(`${show(ring[0]!)}:${lineOf.get(`${ring[0]}\0${ring[1]}`)}: import cycle: ${ring.map(show).join(" -> ")}`);
  }
}

if (counts.bun + counts.layer + counts.cycle) {
  const parts = [
    counts.bun && `${counts.bun} Bun API use(s) (src/ must not depend on Bun APIs)`,
    counts.layer && `${counts.layer} layer violation(s)`,
    counts.cycle && `${counts.cycle} import cycle(s)`,
  ].filter(Boolean);
  console.error(`lint-src: ${parts.join(", ")}`);
  process.exit(1);
}
console.log(`lint-src: ${scanned} files clean`);
