/**
 * Build the single executable: `bun build --compile` of src/main.ts with the
 * seccomp profile embedded (it is imported as JSON) and version, commit and
 * build date baked in.
 *   bun scripts/build.ts [--target bun-linux-x64] [--outfile dist/sandbox]
 */
import { $ } from "bun";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };

export interface BuildFacts {
  version: string;
  commit: string;
  date: string;
}

export async function buildFacts(): Promise<BuildFacts> {
  const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet()).stdout.toString().trim() || "unknown";
  // The commit's own date, not the wall clock, so two builds of one commit are identical.
  const date = (await $`git log -1 --format=%cI`.nothrow().quiet()).stdout.toString().trim() || "unknown";
  return { version: pkg.version, commit, date };
}

/**
 * docker-modem requires ssh2 at load time although only ssh:// engines use
 * it; ssh2 costs ~25 MiB of memory and ~20 ms of start-up. Defer it to the
 * first ssh connection.
 */
const lazySsh2: import("bun").BunPlugin = {
  name: "lazy-ssh2",
  setup(build) {
    build.onLoad({ filter: /docker-modem[/\\]lib[/\\]ssh\.js$/ }, async (args) => {
      const text = await Bun.file(args.path).text();
      const eager = "var Client = require('ssh2').Client,";
      if (!text.includes(eager)) throw new Error("docker-modem's ssh.js changed: update the lazy-ssh2 build plugin");
      return { contents: text.replace(eager, "var Client = function (...a) { return new (require('ssh2').Client)(...a); },"), loader: "js" };
    });
  },
};

/**
 * Two more of docker-modem's dependencies cost start-up time for nothing:
 * `readable-stream` (a userland copy of node:stream, only for its HttpDuplex,
 * which sandbox never uses: attach is hand-rolled, engine/hijack.ts) and
 * `debug` (colour and tty detection for log lines nobody enables). Together
 * ~20 ms of every run's start in the executable. The first becomes node:stream
 * itself, the second a logger that never logs.
 */
const STUBS: Record<string, string> = {
  "readable-stream": `module.exports = require("node:stream");`,
  debug: `module.exports = function debug() { const log = function () {}; log.enabled = false; log.extend = debug; return log; };`,
};
const slimDependencies: import("bun").BunPlugin = {
  name: "slim-dependencies",
  setup(build) {
    build.onResolve({ filter: /^(readable-stream|debug)$/ }, (args) => ({ path: args.path, namespace: "sandbox-stub" }));
    build.onLoad({ filter: /.*/, namespace: "sandbox-stub" }, (args) => ({ contents: STUBS[args.path] ?? "", loader: "js" }));
  },
};

/** `entrypoint`: src/main.ts, or another program built as sandbox is (scripts/bench-floor.ts). */
export async function compile(target: string | undefined, outfile: string, facts?: BuildFacts, entrypoint = "src/main.ts"): Promise<void> {
  const f = facts ?? (await buildFacts());
  const result = await Bun.build({
    entrypoints: [entrypoint],
    compile: {
      outfile,
      ...(target ? { target: target as never } : {}),
      // gc() for src/engine/gc-hint.ts, and JavaScriptCore's tier-up
      // thresholds x1000: sandbox is I/O-bound, and its optimising JIT only
      // added memory (the compiler's own pages and code): 256 MiB through
      // `sandbox run cat` peaked at 68 MiB with the default policy, 59 with
      // this, at the same speed and CPU time (`bun run bench`).
      execArgv: ["--expose-gc"],
      jitPolicy: 1000,
      // sandbox runs inside repositories it does not trust: a directory's .env
      // must not reach process.env (DOCKER_HOST, SANDBOX_CONFIG) and its
      // bunfig.toml `preload` must not run code on the host
      // (test/integration/binary.test.ts).
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
    },
    minify: true,
    bytecode: true,
    sourcemap: "none",
    plugins: [lazySsh2, slimDependencies],
    define: {
      __SANDBOX_VERSION__: JSON.stringify(f.version),
      __SANDBOX_COMMIT__: JSON.stringify(f.commit),
      __SANDBOX_DATE__: JSON.stringify(f.date),
    },
  } as Parameters<typeof Bun.build>[0]);
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`build of ${outfile} failed`);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Bun.argv.slice(2), options: { target: { type: "string" }, outfile: { type: "string" } } });
  const outfile = values.outfile ?? "dist/sandbox";
  await compile(values.target, outfile);
  console.log(`built ${outfile}`);
}
