/**
 * Path patterns of method/path egress rules (`GET api.github.com/repos/**`)
 * and the request paths they are matched against. Pure.
 *
 * A pattern and a path are compared in one canonical spelling, the one the
 * server acts on: percent-escapes of unreserved characters decoded (`%61` is
 * `a`), the others upper-cased. Paths a server might read as something else
 * than they look (an encoded `/` or `\`, a `.` or `..` segment) are not
 * matched at all: the caller refuses them, so `/repos/..%2Fadmin` cannot slip
 * past a rule for `/repos/**` or around a deny rule for `/admin/**`.
 *
 * `*` stands for part of one segment (never a `/`), `**` for any number of
 * whole segments, none included. Matching walks segments, not a regular
 * expression, so a long path cannot make it backtrack without end.
 */

export interface PathPattern {
  /** The pattern as written. */
  readonly text: string;
  /** Canonical segments; "" before the leading "/", "**" for any number of segments. */
  readonly segments: readonly string[];
}

export type PatternParse = { ok: true; value: PathPattern | undefined } | { ok: false; error: string };
export type PathCheck = { ok: true; path: string } | { ok: false; why: string };

const UNRESERVED = /[A-Za-z0-9._~-]/;
/** What RFC 3986 allows in a path, plus `*` (a wildcard here, a sub-delim there). */
const PATH_CHARS = /^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;

/** Decodes escapes of unreserved characters, upper-cases the rest; undefined on a `%` without two hex digits. */
function canonicalEscapes(text: string): string | undefined {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    if (c !== "%") {
      out += c;
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const decoded = String.fromCharCode(parseInt(hex, 16));
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** Why a canonical path cannot be judged by a path rule, if it cannot. */
function ambiguity(path: string): string | undefined {
  if (/%2F|%5C|\\/.test(path)) return "an encoded / or a \\ (%2F, %5C), which servers read differently";
  if (path.split("/").some((s) => s === "." || s === "..")) return "a . or .. segment";
  return undefined;
}

/**
 * The path part of a rule, from its first `/`. Undefined for `/**`, which
 * matches every path and so limits nothing.
 */
export function parsePathPattern(text: string): PatternParse {
  const bad = (why: string): PatternParse => ({ ok: false, error: why });
  if (/[?#]/.test(text)) return bad("has a query or fragment; rules match the path only, so leave out everything from ? or # on");
  if (!PATH_CHARS.test(text)) return bad("has a character that cannot appear in a URL path; percent-encode it, such as %20 for a space");
  const canonical = canonicalEscapes(text);
  if (canonical === undefined) return bad("has a % that is not followed by two hex digits");
  const segments = canonical.split("/");
  if (segments.some((s) => s === "." || s === "..")) return bad("has a . or .. segment; write the path as the server sees it, such as /a/b for /a/./b");
  if (segments.some((s) => s.includes("**") && s !== "**")) {
    return bad("uses ** inside a path segment; ** stands for whole segments (/repos/**), * for part of one (/repos/*.json)");
  }
  if (/%2F|%5C/.test(canonical)) return bad("has an encoded / or \\ (%2F, %5C); such paths are refused, so a rule cannot name them");
  if (canonical === "/**") return { ok: true, value: undefined };
  return { ok: true, value: { text, segments } };
}

/**
 * A request's path (origin-form, the query dropped) in canonical form, or
 * why path rules cannot judge it.
 */
export function canonicalRequestPath(path: string): PathCheck {
  const bare = path.split("?")[0] ?? "";
  if (!bare.startsWith("/")) return { ok: false, why: "no leading /" };
  const canonical = canonicalEscapes(bare);
  if (canonical === undefined) return { ok: false, why: "a % not followed by two hex digits" };
  const why = ambiguity(canonical);
  return why ? { ok: false, why } : { ok: true, path: canonical };
}

/** Does a canonical request path match the pattern? */
export function matchPath(pattern: PathPattern, path: string): boolean {
  const parts = path.split("/");
  // reach[j]: the pattern so far can consume exactly the first j segments.
  let reach = new Uint8Array(parts.length + 1);
  reach[0] = 1;
  for (const seg of pattern.segments) {
    const next = new Uint8Array(parts.length + 1);
    if (seg === "**") {
      let on = false;
      for (let j = 0; j <= parts.length; j++) {
        if (reach[j]) on = true;
        if (on) next[j] = 1;
      }
    } else {
      for (let j = 0; j < parts.length; j++) if (reach[j] && matchSegment(seg, parts[j] ?? "")) next[j + 1] = 1;
    }
    reach = next;
  }
  return reach[parts.length] === 1;
}

/** One segment against one pattern segment with `*` wildcards: the greedy two-pointer match, no backtracking blow-up. */
function matchSegment(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}
