/**
 * Copy mode against an untrusted repository's command (issue #14): the
 * volume's top folder is given to the run's user without a helper container
 * (engine/volume-root.ts), what comes back is capped (core/copy-limits.ts)
 * and written sparse (engine/sparse-write.ts). On Docker and on Podman
 * (DOCKER_HOST / SANDBOX_TEST_ENGINE select the engine).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LABELS } from "../../src/core/labels.ts";
import { listContainers } from "../../src/engine/containers.ts";
import { removeByName, testEngine } from "../helpers/engine.ts";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-copy-mode-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const SLOW = 120_000;
const run = ["run", "--image", TEST_IMAGE, "--network", "none", "--workspace-mode", "copy"];

let n = 0;
function workspace(files: Record<string, string> = {}): string {
  const ws = join(root, `t${n++}`);
  mkdirSync(ws, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(ws, name, ".."), { recursive: true });
    writeFileSync(join(ws, name), text);
  }
  return ws;
}

/** A config file of the user's own (SANDBOX_CONFIG), holding `yaml`. */
function config(yaml: string): string {
  const file = join(root, `config-${n++}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/** The containers the engine created for runs in `ws` between `since` and now (seconds), from its event log. */
async function createdFor(ws: string, since: number): Promise<string[]> {
  const engine = await testEngine();
  const filters = JSON.stringify({ type: ["container"], event: ["create"], label: [`${LABELS.workspace}=${ws}`] });
  const res = await engine.stream({ method: "GET", path: "/events", query: { since: String(since), until: String(Math.ceil(Date.now() / 1000) + 1), filters }, ok: [200] });
  let text = "";
  for await (const chunk of res) text += chunk.toString();
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => (JSON.parse(line) as { Actor?: { Attributes?: { name?: string } } }).Actor?.Attributes?.name ?? "?");
}

describe("the top folder is the run's user's, without a helper container", () => {
  test.each([
    ["a workspace with files", { "README.md": "hello\n", "src/main.c": "int main;\n" }],
    ["an empty workspace", {}],
  ] as const)(
    "%s: a non-root user adds a file at the top of /work, it comes back, and the run made one container",
    async (_label, files) => {
      const ws = workspace(files);
      const name = `copy-owner-${n}`;
      const since = Math.floor(Date.now() / 1000) - 1;
      const script = "id -u && echo made > /work/top.txt && mkdir /work/newdir && echo deep > /work/newdir/f && stat -c '%u:%g' /work";
      const r = await runSandbox([...run, "--user", "1000:1000", "--name", name, "sh", "-c", script], { cwd: ws, timeoutMs: SLOW });
      expect(r.stderr).not.toContain("warning");
      expect(r.stdout.toString()).toBe("1000\n1000:1000\n");
      expect(r.code).toBe(0);
      expect(readFileSync(join(ws, "top.txt"), "utf8")).toBe("made\n");
      expect(readFileSync(join(ws, "newdir", "f"), "utf8")).toBe("deep\n");
      for (const [name, text] of Object.entries(files)) expect(readFileSync(join(ws, name), "utf8")).toBe(text);
      // The run's own container only: no helper from the run's image.
      expect(await createdFor(ws, since)).toEqual([name]);
    },
    SLOW,
  );
});

describe("copy-back", () => {
  test(
    "a 2 GB sparse file made in the container stays sparse on the host",
    async () => {
      const ws = workspace({ "README.md": "hello\n" });
      const script = "truncate -s 2G /work/big && printf 'head' | dd of=/work/big conv=notrunc 2>/dev/null && printf 'tail' | dd of=/work/big bs=1 seek=2147483644 conv=notrunc 2>/dev/null && echo ok";
      const r = await runSandbox([...run, "--user", "0:0", "sh", "-c", script], { cwd: ws, timeoutMs: SLOW });
      expect(r.stdout.toString()).toBe("ok\n");
      expect(r.code).toBe(0);
      const st = statSync(join(ws, "big"));
      expect(st.size).toBe(2 * 1024 ** 3);
      // Two 4 KiB blocks of data, not 2 GB.
      expect(st.blocks * 512).toBeLessThan(1024 * 1024);
      const fd = Bun.file(join(ws, "big"));
      expect(await fd.slice(0, 4).text()).toBe("head");
      expect(await fd.slice(2 * 1024 ** 3 - 4).text()).toBe("tail");
    },
    SLOW,
  );

  test(
    "past workspace.copy_back.max_size nothing comes back, the run fails with 125 and the container is kept",
    async () => {
      const ws = workspace({ "edit.txt": "host\n" });
      const name = `copy-cap-bytes-${n}`;
      // Apparent size counts: a 64 MiB sparse file is over a 16 MiB cap.
      const script = "echo changed > edit.txt && echo new > new.txt && truncate -s 64M big";
      const r = await runSandbox([...run, "--user", "0:0", "--name", name, "sh", "-c", script], {
        cwd: ws,
        timeoutMs: SLOW,
        env: { SANDBOX_CONFIG: config("workspace:\n  copy_back:\n    max_size: 16m\n") },
      });
      try {
        expect(r.code).toBe(125);
        expect(r.stderr).toContain(`nothing was copied back to ${ws}`);
        expect(r.stderr).toContain("more than 16MiB");
        expect(r.stderr).toContain(`The container ${name} was kept`);
        expect(r.stderr).toContain("workspace.copy_back.max_size");
        // All or nothing: not even the small changes before the big file.
        expect(readdirSync(ws).sort()).toEqual(["edit.txt"]);
        expect(readFileSync(join(ws, "edit.txt"), "utf8")).toBe("host\n");
        const kept = await listContainers(await testEngine(), { all: true, labels: [`${LABELS.workspace}=${ws}`] });
        expect(kept.map((c) => c.Names.map((x) => x.replace(/^\//, ""))).flat()).toEqual([name]);
      } finally {
        await removeByName(name);
      }
    },
    SLOW,
  );

  test(
    "past workspace.copy_back.max_files nothing comes back either",
    async () => {
      const ws = workspace();
      const name = `copy-cap-files-${n}`;
      const r = await runSandbox([...run, "--user", "0:0", "--name", name, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i > f$i; done"], {
        cwd: ws,
        timeoutMs: SLOW,
        env: { SANDBOX_CONFIG: config("workspace:\n  copy_back:\n    max_files: 10\n") },
      });
      try {
        expect(r.code).toBe(125);
        expect(r.stderr).toContain("more than 10 files, folders and links");
        expect(r.stderr).toContain("workspace.copy_back.max_files");
        expect(readdirSync(ws)).toEqual([]);
        expect(existsSync(join(ws, "f1"))).toBe(false);
      } finally {
        await removeByName(name);
      }
    },
    SLOW,
  );
});
