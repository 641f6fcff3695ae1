import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, sandboxArgv, TEST_IMAGE } from "../helpers/sandbox.ts";
import { managedContainers, testEngine } from "../helpers/engine.ts";
import { compareVersions } from "../../src/engine/negotiate.ts";

const ENGINE_API_BEFORE_1_42 = compareVersions((await testEngine()).apiVersion ?? "1.41", "1.42") < 0;

const work = mkdtempSync(join(tmpdir(), "sandbox-tty-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Run a shell line inside a real pseudo-terminal made by util-linux `script`. */
function inPty(line: string): { out: string; code: number | null } {
  const r = spawnSync("script", ["-qec", line, "/dev/null"], { cwd: work, env: cleanEnv({ TERM: "xterm" }), encoding: "utf8", timeout: 60_000 });
  return { out: r.stdout, code: r.status };
}

describe("sandbox run with a real terminal", () => {
  test("the container sees a TTY of the caller's size, and the caller's mode is restored", () => {
    const sandbox = sandboxArgv().map(q).join(" ");
    // Engines before API 1.42 (Docker 20.10, as here) cannot size the TTY at
    // create time: like `docker run -t` on them, the size arrives by a resize
    // call right after start, so the command waits a moment before asking.
    const settle = ENGINE_API_BEFORE_1_42 ? "sleep 0.5; " : "";
    const line = [
      "stty rows 33 cols 101",
      `stty -g > ${q(join(work, "before"))}`,
      `${sandbox} run --image ${TEST_IMAGE} sh -c '${settle}stty size; tty; exit 5'; echo "exit=$?"`,
      `stty -g > ${q(join(work, "after"))}`,
    ].join("; ");
    const { out } = inPty(line);
    expect(out).toContain("33 101");
    expect(out).toMatch(/\/dev\/pts\/\d+/);
    expect(out).toContain("exit=5");
    const before = readFileSync(join(work, "before"), "utf8").trim();
    const after = readFileSync(join(work, "after"), "utf8").trim();
    expect(before.length).toBeGreaterThan(10);
    expect(after).toBe(before);
  });

  test("the terminal is restored after a timeout too", () => {
    const sandbox = sandboxArgv().map(q).join(" ");
    const line = [
      `stty -g > ${q(join(work, "before2"))}`,
      `${sandbox} run --timeout 1s --image ${TEST_IMAGE} sleep 30; echo "exit=$?"`,
      `stty -g > ${q(join(work, "after2"))}`,
    ].join("; ");
    const { out } = inPty(line);
    expect(out).toContain("exit=124");
    expect(readFileSync(join(work, "after2"), "utf8")).toBe(readFileSync(join(work, "before2"), "utf8"));
  });

  test("modes a killed full-screen program left on (alternate screen, hidden cursor, mouse, bracketed paste) are switched off after the run", () => {
    const sandbox = sandboxArgv().map(q).join(" ");
    // The command switches them on and is killed by the deadline, as a hung TUI would be.
    const { out, code } = inPty(`${sandbox} run --timeout 2s --image ${TEST_IMAGE} sh -c 'printf "\\033[?1049h\\033[?25l\\033[?1000h\\033[?1006h\\033[?2004hON\\n"; sleep 30'; echo "exit=$?"`);
    expect(code).toBe(0);
    expect(out).toContain("exit=124");
    const on = out.indexOf("ON");
    expect(on).toBeGreaterThan(0);
    const after = out.slice(on);
    for (const off of ["\u001b[?1049l", "\u001b[?25h", "\u001b[?1000l", "\u001b[?1006l", "\u001b[?2004l"]) expect(after).toContain(off);
  });

  test("--no-tty inside a terminal gives the command no TTY", () => {
    const sandbox = sandboxArgv().map(q).join(" ");
    const { out } = inPty(`${sandbox} run --no-tty --image ${TEST_IMAGE} sh -c 'tty; true' < /dev/null`);
    expect(out).toContain("not a tty");
  });

  test("no container is left behind", async () => {
    expect((await managedContainers(`io.sandbox.workspace=${work}`)).length).toBe(0);
  });
});
