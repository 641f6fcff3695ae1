import { describe, expect, test } from "bun:test";
import { canonicalRequestPath, matchPath, parsePathPattern, type PathPattern } from "../../src/egress/path-pattern.ts";

function pattern(text: string): PathPattern {
  const parsed = parsePathPattern(text);
  if (!parsed.ok || !parsed.value) throw new Error(`${text}: ${parsed.ok ? "limits nothing" : parsed.error}`);
  return parsed.value;
}

function matches(p: string, path: string): boolean {
  const canonical = canonicalRequestPath(path);
  if (!canonical.ok) throw new Error(canonical.why);
  return matchPath(pattern(p), canonical.path);
}

describe("path patterns", () => {
  test("** is any number of whole segments, none included", () => {
    expect(matches("/repos/**", "/repos")).toBe(true);
    expect(matches("/repos/**", "/repos/")).toBe(true);
    expect(matches("/repos/**", "/repos/o/r/pulls")).toBe(true);
    expect(matches("/repos/**", "/reposX")).toBe(false);
    expect(matches("/repos/**", "/user/repos")).toBe(false);
    expect(matches("/a/**/z", "/a/z")).toBe(true);
    expect(matches("/a/**/z", "/a/b/c/z")).toBe(true);
    expect(matches("/a/**/z", "/a/b/c/y")).toBe(false);
  });

  test("* is part of one segment, never a /", () => {
    expect(matches("/repos/*/issues", "/repos/o/issues")).toBe(true);
    expect(matches("/repos/*/issues", "/repos/o/r/issues")).toBe(false);
    expect(matches("/files/*.json", "/files/a.b.json")).toBe(true);
    expect(matches("/files/*.json", "/files/a.json/x")).toBe(false);
    expect(matches("/files/*.json", "/files/.json")).toBe(true);
  });

  test("no wildcard: the whole path, case-sensitively; the query is not part of it", () => {
    expect(matches("/hello", "/hello")).toBe(true);
    expect(matches("/hello", "/hello?x=1")).toBe(true);
    expect(matches("/hello", "/hello/")).toBe(false);
    expect(matches("/hello", "/Hello")).toBe(false);
  });

  test("escapes of unreserved characters mean the same path; others keep their meaning", () => {
    expect(matches("/admin/**", "/%61dmin/x")).toBe(true);
    expect(matches("/~me", "/%7eme")).toBe(true);
    expect(matches("/a%20b", "/a%20b")).toBe(true);
    expect(matches("/a%3a", "/a%3A")).toBe(true);
    expect(matches("/a:", "/a%3A")).toBe(false);
  });

  test("paths a server could read as another path are not judged", () => {
    expect(canonicalRequestPath("/a/..%2Fadmin")).toEqual({ ok: false, why: "an encoded / or a \\ (%2F, %5C), which servers read differently" });
    expect(canonicalRequestPath("/a\\b").ok).toBe(false);
    expect(canonicalRequestPath("/a/%2e%2E/b")).toEqual({ ok: false, why: "a . or .. segment" });
    expect(canonicalRequestPath("/a/%zz")).toEqual({ ok: false, why: "a % not followed by two hex digits" });
    expect(canonicalRequestPath("*").ok).toBe(false);
  });

  test("matching stays cheap on long paths and many wildcards", () => {
    const path = `/${"a/".repeat(20_000)}b`;
    expect(matches("/**/a/**/a/**/a/**/c", path)).toBe(false);
    expect(matches(`/${"*a".repeat(30)}c`, `/${"a".repeat(30_000)}`)).toBe(false);
  });

  test("/** limits nothing", () => {
    expect(parsePathPattern("/**")).toEqual({ ok: true, value: undefined });
  });
});
