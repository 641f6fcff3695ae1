import { describe, expect, test } from "bun:test";
import { ignoreMatcher, parseIgnore } from "../../src/core/ignore.ts";

describe(".sandboxignore", () => {
  const ignored = ignoreMatcher(
    [
      "# dependencies",
      "node_modules/",
      "*.log",
      "!keep.log",
      "/build",
      "docs/*.md",
      "cache/**/tmp",
      "\\#literal",
      "trailing   ",
      "",
    ].join("\n"),
  );

  test("a name without a slash matches at any depth", () => {
    expect(ignored("a.log", false)).toBe(true);
    expect(ignored("x/y/z.log", false)).toBe(true);
    expect(ignored("a.logx", false)).toBe(false);
  });

  test("negation re-includes", () => {
    expect(ignored("keep.log", false)).toBe(false);
    expect(ignored("sub/keep.log", false)).toBe(false);
  });

  test("a trailing slash matches folders only, and everything inside them", () => {
    expect(ignored("node_modules", true)).toBe(true);
    expect(ignored("node_modules", false)).toBe(false);
    expect(ignored("node_modules/pkg/index.js", false)).toBe(true);
    expect(ignored("a/node_modules/x", false)).toBe(true);
  });

  test("a leading slash or an inner slash anchors to the root", () => {
    expect(ignored("build", true)).toBe(true);
    expect(ignored("build/out.js", false)).toBe(true);
    expect(ignored("src/build", true)).toBe(false);
    expect(ignored("docs/a.md", false)).toBe(true);
    expect(ignored("docs/sub/a.md", false)).toBe(false);
    expect(ignored("other/docs/a.md", false)).toBe(false);
    expect(ignored("cache/a/b/tmp", true)).toBe(true);
    expect(ignored("cache/tmp", true)).toBe(true);
  });

  test("escapes, comments and trailing spaces", () => {
    expect(ignored("#literal", false)).toBe(true);
    expect(ignored("trailing", false)).toBe(true);
    expect(parseIgnore("# only a comment\n\n")).toEqual([]);
  });

  test("nothing inside an excluded folder can be re-included (git's rule)", () => {
    const m = ignoreMatcher("logs/\n!logs/important.txt\n");
    expect(m("logs/important.txt", false)).toBe(true);
  });

  test("dotfiles match like any other name", () => {
    const m = ignoreMatcher(".env\n.cache/\n");
    expect(m(".env", false)).toBe(true);
    expect(m("sub/.env", false)).toBe(true);
    expect(m(".cache/x", false)).toBe(true);
    expect(m(".envrc", false)).toBe(false);
  });

  test("no file: nothing is ignored", () => {
    expect(ignoreMatcher(undefined)("anything", false)).toBe(false);
  });
});
