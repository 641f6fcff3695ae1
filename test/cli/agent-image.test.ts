import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { compactProgress, fullProgress } from "../../src/cli/agent-image.ts";
import { readCertificates } from "../../src/cli/ca-files.ts";
import { UsageError } from "../../src/core/errors.ts";
import type { TerminalOut } from "../../src/term/io.ts";

function terminal(isTTY: boolean): TerminalOut & { text(): string } {
  let text = "";
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number; text(): string };
  out.isTTY = isTTY;
  out.columns = 60;
  out.text = () => text;
  return out;
}

const cert = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";

describe("readCertificates", () => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-ca-test-"));
  writeFileSync(join(dir, "corp.pem"), cert);
  writeFileSync(join(dir, "bundle.pem"), `${cert}-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n`);
  writeFileSync(join(dir, "empty.pem"), "nothing\n");

  test("relative paths from the current folder, ~ from home, bundles split, duplicates once", () => {
    const certs = readCertificates(["corp.pem", "~/bundle.pem"], { cwd: dir, homeDir: dir });
    expect(certs).toHaveLength(2);
  });

  test("unreadable or certificate-less files are usage errors naming them", () => {
    expect(() => readCertificates(["missing.pem"], { cwd: dir, homeDir: dir })).toThrow(UsageError);
    expect(() => readCertificates(["missing.pem"], { cwd: dir, homeDir: dir })).toThrow("missing.pem");
    expect(() => readCertificates(["empty.pem"], { cwd: dir, homeDir: dir })).toThrow("empty.pem holds no PEM certificate");
  });
});

describe("build progress", () => {
  test("off a terminal: plain lines, a layer's status once, no carriage returns", () => {
    const out = terminal(false);
    const p = fullProgress(out, false, false);
    p.onEvent({ stream: "Step 1/2 : FROM x\n" });
    p.onEvent({ stream: "\u001b[91moops\n\u001b[0m" });
    p.onEvent({ id: "a1", status: "Downloading", progress: "[=>   ] 1MB/9MB" });
    p.onEvent({ id: "a1", status: "Downloading", progress: "[==>  ] 2MB/9MB" });
    p.onEvent({ id: "a1", status: "Pull complete" });
    p.clear();
    expect(out.text()).toBe("Step 1/2 : FROM x\noops\na1: Downloading\na1: Pull complete\n");
  });

  test("on a terminal: pull lines redrawn in place, output as it comes", () => {
    const out = terminal(true);
    const p = fullProgress(out, true, false);
    p.onEvent({ id: "a1", status: "Downloading", progress: "1MB/9MB" });
    p.onEvent({ stream: "Step 2/2 : RUN x\n" });
    expect(out.text()).toBe("\r\u001b[2Ka1: Downloading 1MB/9MB\r\u001b[2KStep 2/2 : RUN x\n");
  });

  test("--quiet: nothing", () => {
    const out = terminal(true);
    const p = fullProgress(out, true, true);
    p.onEvent({ stream: "Step 1/1 : FROM x\n" });
    expect(out.text()).toBe("");
  });

  test("a run's first build: one line, cut to the terminal's width; nothing off a terminal", () => {
    const out = terminal(true);
    const p = compactProgress(out, "claude", true);
    p.onEvent({ stream: "Step 7/7 : RUN npm install -g @anthropic-ai/claude-code and a very long line\nadded 2 packages in 4s\n" });
    p.clear();
    const text = out.text();
    expect(text).toStartWith("\r\u001b[2Ksandbox: building claude (step 7/7): added 2 packages in 4s");
    expect(text.split("\r\u001b[2K")[1]?.length).toBeLessThanOrEqual(59);
    expect(text).toEndWith("\r\u001b[2K");
    const off = terminal(false);
    compactProgress(off, "x", false).onEvent({ stream: "Step 1/1 : FROM x\n" });
    expect(off.text()).toBe("");
  });
});
