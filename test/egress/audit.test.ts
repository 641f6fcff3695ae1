import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, denialSummary, openAuditFile, type AuditEntry } from "../../src/egress/audit.ts";

const dir = mkdtempSync(join(tmpdir(), "sandbox-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const entry = (over: Partial<AuditEntry>): AuditEntry => ({
  time: "2026-01-01T00:00:00.000Z",
  method: "CONNECT",
  host: "a.test",
  port: 443,
  decision: "allow",
  reason: "matched a.test",
  bytesUp: 10,
  bytesDown: 20,
  durationMs: 5,
  ...over,
});

describe("AuditLog", () => {
  test("writes one JSON line per entry as it happens, to a private file", () => {
    const path = join(dir, "a.jsonl");
    const log = new AuditLog(openAuditFile(path));
    log.record(entry({}));
    // Readable before close: line by line, not at the end.
    expect(readFileSync(path, "utf8").trim().split("\n").length).toBe(1);
    log.record(entry({ host: "b.test", decision: "deny", reason: "not on the allow-list", bytesUp: 0, bytesDown: 0 }));
    log.close();
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.host, l.decision])).toEqual([
      ["a.test", "allow"],
      ["b.test", "deny"],
    ]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(log.allowed).toBe(1);
    expect(log.denied).toBe(1);
  });

  test("a second run truncates the file", () => {
    const path = join(dir, "b.jsonl");
    for (let run = 0; run < 2; run++) {
      const log = new AuditLog(openAuditFile(path));
      log.record(entry({}));
      log.close();
    }
    expect(readFileSync(path, "utf8").trim().split("\n").length).toBe(1);
  });

  test("the summary groups denials by destination and reason, most frequent first", () => {
    const log = new AuditLog();
    log.record(entry({}));
    for (let i = 0; i < 3; i++) log.record(entry({ host: "x.test", port: 80, decision: "deny", reason: "not on the allow-list" }));
    log.record(entry({ host: "y.test", decision: "deny", reason: "resolves to 127.0.0.1 is a loopback address" }));
    log.record(entry({ host: "::1", port: 80, decision: "deny", reason: "not on the allow-list" }));
    expect(log.summary("/tmp/audit.jsonl")).toEqual([
      "egress: denied 5 of 6 connections:",
      "  x.test:80: not on the allow-list (3×)",
      "  [::1]:80: not on the allow-list",
      "  y.test:443: resolves to 127.0.0.1 is a loopback address",
      "  full record: /tmp/audit.jsonl",
    ]);
  });

  test("no denials, no summary; many denials are cut short with a pointer", () => {
    expect(new AuditLog().summary()).toEqual([]);
    const groups = Array.from({ length: 12 }, (_, i) => ({ target: `h${i}.test:80`, reason: "not on the allow-list", count: 1 }));
    const lines = denialSummary(groups, 0, 12, undefined, 10);
    expect(lines.length).toBe(12);
    expect(lines[11]).toContain("and 2 more (record them all with --audit FILE)");
  });
});
