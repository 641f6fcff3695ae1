/**
 * Guarding the host from the command (docs/guard.md): secret masks,
 * protected paths, the fail-closed preflight, and `sandbox doctor`, against
 * the real engine. Runs use --network none: the network is not under test,
 * and the tests must not depend on the engine's bridge.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";
import { managedContainers } from "../helpers/engine.ts";
import { prepareGuard } from "../../src/workspace/guard.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-guard-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const run = ["run", "--image", TEST_IMAGE, "--network", "none"];
const SLOW = 60_000;

function tree(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

function snapshot(dir: string, paths: string[]): string[] {
  return paths.map((p) => `${p}:${readFileSync(join(dir, p), "utf8")}:${statSync(join(dir, p)).mtimeMs}`);
}

async function leftovers(workspace: string): Promise<number> {
  return (await managedContainers(`io.sandbox.workspace=${workspace}`)).length;
}

describe("secret files stay hidden", () => {
  test(
    ".env, certs/server.key and .ssh/id_ed25519 read empty or absent; src/app.js reads normally; the host files are unchanged",
    async () => {
      const secrets = [".env", "certs/server.key", ".ssh/id_ed25519"];
      const dir = tree("mask", {
        ".env": "API_TOKEN=hunter2\n",
        "certs/server.key": "-----BEGIN PRIVATE KEY-----\n",
        ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "src/app.js": "console.log('app');\n",
      });
      const before = snapshot(dir, [...secrets, "src/app.js"]);
      const script = [
        "printf '[%s]' \"$(cat .env)\" \"$(cat certs/server.key)\"; echo",
        "if [ -e .ssh/id_ed25519 ]; then echo ssh-visible; else echo ssh-hidden; fi",
        "cat src/app.js",
        // Writing through a mask fails too: the stand-ins are read-only.
        "if ( echo x > .env ) 2>/dev/null; then echo env-writable; else echo env-read-only; fi",
      ].join("; ");
      const r = await runSandbox([...run, "sh", "-c", script], { cwd: dir });
      // The one info line names what was hidden (issue #16: no silent security decisions); -q hides it.
      expect(r.stderr).toBe("sandbox: guard: masked .env, .ssh, certs/server.key (empty inside) (docs/guard.md)\n");
      expect(r.stdout.toString()).toBe("[][]\nssh-hidden\nconsole.log('app');\nenv-read-only\n");
      expect(r.code).toBe(0);
      expect(snapshot(dir, [...secrets, "src/app.js"])).toEqual(before);
      expect(await leftovers(dir)).toBe(0);
    },
    SLOW,
  );

  test(
    "a secret-named symlink is masked at its target; workspace.mask adds patterns with exceptions; --no-mask shows everything with a warning",
    async () => {
      const dir = tree("mask-more", { "keys/deploy.txt": "deploy-secret\n", "conf/app.secret": "s\n", "test/fixtures/ok.pem": "fixture\n" });
      symlinkSync("keys/deploy.txt", join(dir, "id_rsa"));
      const xdg = join(root, "xdg-mask");
      mkdirSync(join(xdg, "sandbox"), { recursive: true });
      writeFileSync(join(xdg, "sandbox", "config.yaml"), "workspace:\n  mask: ['*.secret', '!test/fixtures/*.pem']\n");
      const env = { XDG_CONFIG_HOME: xdg };
      const r = await runSandbox([...run, "sh", "-c", "cat id_rsa keys/deploy.txt conf/app.secret test/fixtures/ok.pem"], { cwd: dir, env });
      expect(r.stdout.toString()).toBe("fixture\n");
      expect(r.code).toBe(0);

      const open = await runSandbox([...run, "--no-mask", "sh", "-c", "cat id_rsa"], { cwd: dir });
      expect(open.stdout.toString()).toBe("deploy-secret\n");
      expect(open.stderr).toContain("--no-mask");
    },
    SLOW,
  );
});

describe("tamper-proof paths", () => {
  test(
    "writing .git/hooks/pre-commit or .github/workflows/ci.yml fails, moving them aside fails, .git and src/ stay writable",
    async () => {
      const dir = tree("protect", {
        ".git/hooks/pre-commit": "#!/bin/sh\nexit 0\n",
        ".git/config": "[core]\n\tbare = false\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".github/workflows/ci.yml": "on: push\n",
        ".vscode/tasks.json": "{}\n",
        "src/app.js": "1\n",
      });
      const guarded = [".git/hooks/pre-commit", ".git/config", ".github/workflows/ci.yml", ".vscode/tasks.json"];
      const before = snapshot(dir, guarded);
      const attempt = (label: string, cmd: string) => `if ( ${cmd} ) 2>/dev/null; then echo ${label}=ok; else echo ${label}=denied; fi`;
      const script = [
        attempt("hook", "echo evil > .git/hooks/pre-commit"),
        attempt("newhook", "echo evil > .git/hooks/post-checkout"),
        attempt("workflow", "echo evil > .github/workflows/ci.yml"),
        attempt("config", "echo '[core] hooksPath = x' >> .git/config"),
        attempt("tasks", "echo evil > .vscode/tasks.json"),
        attempt("move-github", "mv .github gh-aside"),
        attempt("move-hooks", "mv .git/hooks .git/hooks-aside"),
        attempt("remove-vscode", "rm -rf .vscode"),
        attempt("git-write", "echo 0000 > .git/ORIG_HEAD"),
        attempt("src", "echo 'export {}' > src/new.js"),
      ].join("\n");
      const r = await runSandbox([...run, "sh", "-c", script], { cwd: dir });
      expect(r.stdout.toString()).toBe(
        [
          "hook=denied",
          "newhook=denied",
          "workflow=denied",
          "config=denied",
          "tasks=denied",
          "move-github=denied",
          "move-hooks=denied",
          "remove-vscode=denied",
          "git-write=ok",
          "src=ok",
          "",
        ].join("\n"),
      );
      expect(r.code).toBe(0);
      expect(snapshot(dir, guarded)).toEqual(before);
      expect(readFileSync(join(dir, "src/new.js"), "utf8")).toBe("export {}\n");
      expect(readFileSync(join(dir, ".git/ORIG_HEAD"), "utf8")).toBe("0000\n");
    },
    SLOW,
  );

  test(
    "a protected path that is a symlink to outside the workspace is never bound: a warning, and no mount of the outside",
    async () => {
      const outside = tree("outside", { "tasks.json": "{}\n" });
      const dir = tree("protect-link", { "src/a.js": "1\n" });
      symlinkSync(outside, join(dir, ".vscode"));
      const r = await runSandbox([...run, "--dry-run", "true"], { cwd: dir });
      expect(r.code).toBe(0);
      const plan = JSON.parse(r.stdout.toString());
      const sources: string[] = plan.create.HostConfig.Mounts.map((m: { Source?: string }) => m.Source ?? "");
      expect(sources.some((s) => s.startsWith(outside))).toBe(false);
      expect(plan.warnings.join("\n")).toContain(".vscode is a symlink to outside the workspace");
    },
    SLOW,
  );
});

/** A pretend engine on a unix socket: answers /_ping, /info and image inspect, records every request. */
async function fakeEngine(info: Record<string, unknown>): Promise<{ host: string; requests: string[]; close(): Promise<void> }> {
  const socket = join(root, `fake-${Math.random().toString(16).slice(2)}.sock`);
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    const path = (req.url ?? "").replace(/^\/v[\d.]+/, "").split("?")[0] ?? "";
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json", "Api-Version": "1.41", Server: "Docker/20.10.0 (linux)" });
      res.end(JSON.stringify(body));
    };
    if (path === "/_ping") {
      res.writeHead(200, { "Api-Version": "1.41", Server: "Docker/20.10.0 (linux)", OSType: "linux", "Content-Type": "text/plain" });
      res.end("OK");
    } else if (path === "/info") json(200, info);
    else if (path.startsWith("/images/") && path.endsWith("/json")) json(200, { Id: "sha256:fake", RepoTags: [TEST_IMAGE], Config: {} });
    else json(500, { message: "the fake engine does not do this" });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { host: `unix://${socket}`, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const HEALTHY_INFO = {
  SecurityOptions: ["name=seccomp,profile=default"],
  MemoryLimit: true,
  SwapLimit: true,
  PidsLimit: true,
  CpuCfsQuota: true,
  CpuCfsPeriod: true,
  KernelVersion: "6.1.0",
  OSType: "linux",
  DefaultRuntime: "runc",
};

describe("fail closed", () => {
  test(
    "an engine reporting no seccomp: run refuses with 125 naming seccomp, before any start",
    async () => {
      const engine = await fakeEngine({ ...HEALTHY_INFO, SecurityOptions: ["name=apparmor"] });
      try {
        const dir = tree("fake", { "a.txt": "a\n" });
        const r = await runSandbox([...run, "true"], { cwd: dir, env: { DOCKER_HOST: engine.host } });
        expect(r.code).toBe(125);
        expect(r.stderr).toContain("seccomp");
        expect(r.stderr).toContain("--insecure-allow seccomp");
        expect(engine.requests.some((req) => req.includes("/info"))).toBe(true);
        // The refusal outranks this fake's failing create, and nothing is started.
        expect(engine.requests.some((req) => /\/containers\/[^/]+\/(start|attach)/.test(req))).toBe(false);

        // With the risk accepted it goes on to create (which this fake cannot do).
        const allowed = await runSandbox([...run, "--insecure-allow", "seccomp", "true"], { cwd: dir, env: { DOCKER_HOST: engine.host } });
        expect(allowed.stderr).toContain("running without seccomp");
        expect(engine.requests.some((req) => req.startsWith("POST") && req.includes("/containers/create"))).toBe(true);
      } finally {
        await engine.close();
      }
    },
    SLOW,
  );

  test(
    "an engine without the memory and pids cgroups: refused, naming both",
    async () => {
      const engine = await fakeEngine({ ...HEALTHY_INFO, MemoryLimit: false, PidsLimit: false });
      try {
        const r = await runSandbox([...run, "true"], { cwd: tree("fake2", { "a.txt": "a\n" }), env: { DOCKER_HOST: engine.host } });
        expect(r.code).toBe(125);
        expect(r.stderr).toContain("memory-limit");
        expect(r.stderr).toContain("pids-limit");
        expect(engine.requests.some((req) => /\/containers\/[^/]+\/(start|attach)/.test(req))).toBe(false);
      } finally {
        await engine.close();
      }
    },
    SLOW,
  );

  test(
    "a seccomp profile the real engine rejects (unknown architecture): 125 naming seccomp, no container left",
    async () => {
      const dir = tree("bad-seccomp", { "profile.json": JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_PDP11"], syscalls: [] }) });
      const r = await runSandbox([...run, "--seccomp", join(dir, "profile.json"), "echo", "should-not-run"], { cwd: dir });
      expect(r.code).toBe(125);
      expect(r.stderr.toLowerCase()).toContain("seccomp");
      expect(r.stdout.toString()).toBe("");
      expect(await leftovers(dir)).toBe(0);
    },
    SLOW,
  );

  test("an unknown --insecure-allow name is a usage error", async () => {
    const r = await runSandbox([...run, "--insecure-allow", "everything", "true"], { cwd: root });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain("everything");
    expect(r.stderr).toContain("seccomp, no-new-privileges");
  });
});

describe("sandbox doctor", () => {
  test(
    "shows every protection active on the test engine (exit 0), as a table and as JSON",
    async () => {
      const r = await runSandbox(["doctor", "--image", TEST_IMAGE], { cwd: root });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const text = r.stdout.toString();
      for (const name of ["seccomp", "no-new-privileges", "capabilities", "read-only-root", "memory-limit", "swap-limit", "pids-limit", "secret-mask", "protect"]) {
        expect(text).toMatch(new RegExp(`^${name} +active `, "m"));
      }
      expect(text).toContain("every protection is active");

      const j = await runSandbox(["doctor", "--image", TEST_IMAGE, "--json", "--cpus", "1"], { cwd: root });
      expect(j.code).toBe(0);
      const view = JSON.parse(j.stdout.toString());
      expect(view.ok).toBe(true);
      const statuses: Record<string, string> = Object.fromEntries(view.protections.map((p: { protection: string; status: string }) => [p.protection, p.status]));
      expect(statuses["cpu-limit"]).toBe("active");
      // Egress (and so its host rule) is Docker's only: n/a on Podman (test/integration/doctor.test.ts).
      const { "egress-host": egressHost, ...rest } = statuses;
      expect(egressHost).toBe(IS_PODMAN ? "n/a" : "active");
      expect(Object.values(rest).every((s) => s === "active")).toBe(true);
    },
    SLOW * 2,
  );

  test(
    "exits 1 and says which protection is missing when the engine lacks one",
    async () => {
      const engine = await fakeEngine({ ...HEALTHY_INFO, SecurityOptions: [] });
      try {
        const r = await runSandbox(["doctor", "--image", TEST_IMAGE], { cwd: root, env: { DOCKER_HOST: engine.host } });
        expect(r.code).toBe(1);
        expect(r.stdout.toString()).toMatch(/^seccomp +inactive /m);
      } finally {
        await engine.close();
      }
    },
    SLOW,
  );
});

describe("the mask walk on a big repository", () => {
  test(
    "50,000 files: the walk stays fast, skips dependency trees, and finds a deep secret",
    async () => {
      const dir = join(root, "big");
      for (let a = 0; a < 10; a++) {
        for (let b = 0; b < 10; b++) {
          for (let c = 0; c < 10; c++) {
            const leaf = join(dir, `pkg${a}`, `mod${b}`, `part${c}`);
            mkdirSync(leaf, { recursive: true });
            for (let f = 0; f < 50; f++) writeFileSync(join(leaf, `file${f}.ts`), "");
          }
        }
      }
      mkdirSync(join(dir, "node_modules", "dep"), { recursive: true });
      for (let f = 0; f < 5000; f++) writeFileSync(join(dir, "node_modules", "dep", `f${f}.js`), "");
      writeFileSync(join(dir, "node_modules", "dep", "test.key"), "not ours");
      writeFileSync(join(dir, "pkg7", "mod3", "part9", "server.key"), "secret");

      const times: number[] = [];
      let guard: Awaited<ReturnType<typeof prepareGuard>> | undefined;
      for (let i = 0; i < 3; i++) {
        guard = await prepareGuard({ workspace: dir, target: "/work", mask: [], protect: [], noMask: false, readOnlyWorkspace: false });
        times.push(guard.ms);
      }
      console.log(`mask walk, ${guard?.entries} entries: ${times.map((t) => `${t.toFixed(0)} ms`).join(", ")}`);
      expect(guard?.entries).toBeGreaterThan(50_000);
      expect(guard?.masked).toEqual(["pkg7/mod3/part9/server.key"]);
      // ~60 ms on an idle machine; generous for a loaded CI runner.
      expect(Math.min(...times)).toBeLessThan(2000);

      const r = await runSandbox([...run, "sh", "-c", "cat pkg7/mod3/part9/server.key; cat node_modules/dep/test.key"], { cwd: dir });
      expect(r.stdout.toString()).toBe("not ours");
      expect(r.code).toBe(0);
    },
    SLOW * 2,
  );
});
