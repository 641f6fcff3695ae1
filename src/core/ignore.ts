import picomatch from "picomatch";

/**
 * `.sandboxignore`: which workspace paths `--workspace-mode copy` neither
 * sends into the container nor touches when copying changes back. The
 * syntax is .gitignore's (one file, at the workspace root):
 *
 *   # comment            blank lines and comments are skipped
 *   *.log                no slash: matches at any depth
 *   /build               leading slash: only at the root
 *   docs/*.md            a slash inside: relative to the root
 *   node_modules/        trailing slash: directories only
 *   !keep.log            negation: re-includes what an earlier line excluded
 *   \#file, \!file       a literal leading # or !
 *
 * As in git, the last matching line wins, and nothing inside an excluded
 * directory can be re-included (the directory is not looked into at all).
 */
export interface IgnoreRule {
  negate: boolean;
  dirOnly: boolean;
  match: (path: string) => boolean;
  source: string;
}

export function parseIgnore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    // Trailing spaces are dropped unless escaped with a backslash.
    let line = raw.replace(/(?<!\\)\s+$/, "").replace(/\\(\s)$/, "$1");
    if (line === "" || line.startsWith("#")) continue;
    let negate = false;
    if (line.startsWith("!")) {
      negate = true;
      line = line.slice(1);
    } else if (line.startsWith("\\!") || line.startsWith("\\#")) {
      line = line.slice(1);
    }
    let dirOnly = false;
    if (line.endsWith("/")) {
      dirOnly = true;
      line = line.replace(/\/+$/, "");
    }
    if (line === "") continue;
    const anchored = line.includes("/");
    const body = line.replace(/^\/+/, "");
    const glob = anchored ? body : `**/${body}`;
    const matcher = picomatch(glob, { dot: true });
    rules.push({ negate, dirOnly, match: (path) => matcher(path), source: raw });
  }
  return rules;
}

/** The verdict for the path itself, ignoring its parents (the walker already skipped excluded ones). */
export function matchesOwn(rules: readonly IgnoreRule[], path: string, isDir: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.dirOnly && !isDir) continue;
    if (rule.match(path)) ignored = !rule.negate;
  }
  return ignored;
}

/** Is `path` (relative, '/'-separated) ignored, itself or through an excluded parent directory? */
export function isIgnored(rules: readonly IgnoreRule[], path: string, isDir: boolean): boolean {
  if (rules.length === 0) return false;
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) {
    if (matchesOwn(rules, parts.slice(0, i).join("/"), true)) return true;
  }
  return matchesOwn(rules, path, isDir);
}

/** A matcher for one workspace: `(path, isDir) => ignored`. */
export function ignoreMatcher(text: string | undefined): (path: string, isDir: boolean) => boolean {
  const rules = parseIgnore(text ?? "");
  return (path, isDir) => isIgnored(rules, path, isDir);
}
