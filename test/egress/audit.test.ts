import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxError } from "../../src/core/errors.ts";
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

describe("the audit file is opened as named, never through a link", () => {
  test("a planted symlink to a file of the user's is refused, and the file keeps its content", () => {
    const bashrc = join(dir, "bashrc");
    writeFileSync(bashrc, "alias ls='ls --color'\n");
    const planted = join(dir, "egress.jsonl");
    symlinkSync(bashrc, planted);
    let err: unknown;
    try {
      openAuditFile(planted);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).exitCode).toBe(125);
    expect((err as SandboxError).message).toBe(
      `refusing to write the audit file ${planted}: it is a symbolic link (to ${bashrc}). sandbox never writes the audit through a link, so a link someone planted there cannot make it overwrite another file.`,
    );
    expect(readFileSync(bashrc, "utf8")).toBe("alias ls='ls --color'\n");
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
  });

  test("a dangling link (to a file it would create) is refused too, and nothing is created", () => {
    const target = join(dir, "created-by-link");
    const planted = join(dir, "dangling.jsonl");
    symlinkSync(target, planted);
    expect(() => openAuditFile(planted)).toThrow("it is a symbolic link");
    expect(existsSync(target)).toBe(false);
  });

  test("a regular file is opened, truncated and written as before", () => {
    const path = join(dir, "plain.jsonl");
    writeFileSync(path, "old\n");
    const sink = openAuditFile(path);
    sink.write("new\n");
    sink.close();
    expect(readFileSync(path, "utf8")).toBe("new\n");
  });
});

describe("the denial summary prints what the command sent with control characters escaped", () => {
  test("hosts, CONNECT targets and SNI names carrying ESC, BEL, CR/LF and C1 controls", () => {
    const log = new AuditLog();
    log.record(entry({ host: "\x1b]0;pwned\x07evil.test", port: 443, decision: "deny", reason: "not on the allow-list" }));
    log.record(entry({ host: "\x1b[2J\x1b[Hx:1\r\nsandbox: all good", port: 0, decision: "deny", reason: "malformed CONNECT target" }));
    log.record(entry({ host: "a.test", decision: "deny", reason: "the ClientHello names \u009b31mb.test, not a.test" }));
    const lines = log.summary("/tmp/a\x1b.jsonl");
    expect(lines).toEqual([
      "egress: denied 3 of 3 connections:",
      "  [\\x1b[2J\\x1b[Hx:1\\r\\nsandbox: all good]:0: malformed CONNECT target",
      "  \\x1b]0;pwned\\x07evil.test:443: not on the allow-list",
      "  a.test:443: the ClientHello names \\x9b31mb.test, not a.test",
      "  full record: /tmp/a\\x1b.jsonl",
    ]);
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });
});
