import { describe, expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import { cleanCell, renderTable } from "../../src/cli/table.ts";
import { psEntries, renderPs, shortenHome } from "../../src/cli/commands/ps.ts";
import { confirm, isYes } from "../../src/cli/confirm.ts";
import { formatAge } from "../../src/core/age.ts";
import type { ContainerSummary } from "../../src/engine/containers.ts";

describe("renderTable", () => {
  const columns = [
    { header: "ID", value: (r: { id: string; name: string }) => r.id },
    { header: "NAME", value: (r: { id: string; name: string }) => r.name },
  ];
  test("aligns columns with two spaces and no trailing blanks", () => {
    expect(renderTable(columns, [{ id: "a", name: "first" }, { id: "abcdef", name: "x" }])).toBe("ID      NAME\na       first\nabcdef  x\n");
  });
  test("headers only for no rows", () => {
    expect(renderTable(columns, [])).toBe("ID  NAME\n");
  });
  test("an empty last cell leaves no trailing space", () => {
    expect(renderTable(columns, [{ id: "a", name: "" }])).toBe("ID  NAME\na\n");
  });
  test("counts code points, so accented names stay aligned", () => {
    expect(renderTable(columns, [{ id: "é", name: "x" }, { id: "ab", name: "y" }])).toBe("ID  NAME\né   x\nab  y\n");
  });
  test("control characters cannot reach the terminal", () => {
    expect(cleanCell("a\u001b[31mb\nc")).toBe("a?[31mb?c");
    expect(renderTable(columns, [{ id: "\u001b]0;x\u0007", name: "n" }])).not.toContain("\u001b");
  });
});

test("formatAge uses one coarse unit", () => {
  expect(formatAge(5_000)).toBe("5s");
  expect(formatAge(-5)).toBe("0s");
  expect(formatAge(125_000)).toBe("2m");
  expect(formatAge(5 * 3_600_000)).toBe("5h");
  expect(formatAge(47 * 3_600_000)).toBe("47h");
  expect(formatAge(3 * 86_400_000)).toBe("3d");
});

describe("ps rows", () => {
  const NOW = Date.parse("2026-01-01T12:00:00Z");
  const summary = (id: string, labels: Record<string, string> | null, createdIso: string): ContainerSummary => ({
    Id: id.padEnd(64, "0"),
    Names: [`/sandbox-${id}`],
    Image: "sandbox-test/busybox:1",
    Command: "sh -c 'exit 3'",
    Created: Math.floor(Date.parse(createdIso) / 1000),
    State: "exited",
    Status: "Exited (3) 1 hour ago",
    Labels: labels,
  });
  const managed = (created: string) => ({
    "io.sandbox.managed": "true",
    "io.sandbox.agent": "claude",
    "io.sandbox.workspace": "/home/me/app",
    "io.sandbox.command": '["claude","--help"]',
    "io.sandbox.created": created,
  });

  test("only ours, newest first, with label fields", () => {
    const list = [
      summary("old", managed("2026-01-01T10:00:00.000Z"), "2026-01-01T10:00:00Z"),
      summary("foreign", { sandbox: "true" }, "2026-01-01T11:59:00Z"),
      summary("new", managed("2026-01-01T11:00:00.000Z"), "2026-01-01T11:00:00Z"),
    ];
    const entries = psEntries(list, NOW);
    expect(entries.map((e) => e.name)).toEqual(["sandbox-new", "sandbox-old"]);
    expect(entries[0]).toMatchObject({ shortId: "new000000000", agent: "claude", workspace: "/home/me/app", command: ["claude", "--help"], ageSeconds: 3600, created: "2026-01-01T11:00:00.000Z" });
  });
  test("falls back to the engine's Created and Command", () => {
    const [entry] = psEntries([summary("x", { "io.sandbox.managed": "true" }, "2026-01-01T11:30:00Z")], NOW);
    expect(entry).toMatchObject({ agent: "", workspace: "", command: ["sh -c 'exit 3'"], ageSeconds: 1800 });
  });
  test("the table shortens the home directory and fills blanks with -", () => {
    const entries = psEntries([summary("new", managed("2026-01-01T11:00:00.000Z"), "2026-01-01T11:00:00Z"), summary("bare", { "io.sandbox.managed": "true" }, "2026-01-01T11:30:00Z")], NOW);
    const text = renderPs(entries, "/home/me");
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+AGENT\s+IMAGE\s+WORKSPACE\s+STATUS\s+AGE$/);
    expect(lines[1]).toMatch(/^bare00000000\s+sandbox-bare\s+-\s+sandbox-test\/busybox:1\s+-\s+Exited \(3\) 1 hour ago\s+30m$/);
    expect(lines[2]).toContain("~/app");
  });
  test("shortenHome only replaces a whole leading directory", () => {
    expect(shortenHome("/home/me/app", "/home/me/")).toBe("~/app");
    expect(shortenHome("/home/me", "/home/me")).toBe("~");
    expect(shortenHome("/home/meow/app", "/home/me")).toBe("/home/meow/app");
    expect(shortenHome("/srv/app", "/")).toBe("/srv/app");
  });
});

describe("confirm", () => {
  test("isYes: y or yes, nothing else", () => {
    for (const yes of ["y", "Y", "yes", " YES "]) expect(isYes(yes)).toBe(true);
    for (const no of ["", "n", "no", "yess", "sure"]) expect(isYes(no)).toBe(false);
  });
  test("reads one line and writes the question", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let asked = "";
    output.on("data", (c: Buffer) => (asked += c.toString()));
    const answer = confirm(input, output, "Remove 2?");
    input.write("ye");
    input.write("s\nextra");
    expect(await answer).toBe(true);
    expect(asked).toBe("Remove 2? [y/N] ");
  });
  test("end of input is no", async () => {
    const input = new PassThrough();
    const answer = confirm(input, new PassThrough(), "Remove?");
    input.end("y");
    expect(await answer).toBe(false);
  });
});
