/**
 * One plan, one body: the body the engine receives for POST /containers/create
 * is the body `--dry-run` printed, except the run-time values docs/commands.md
 * lists (the start-time label, the stand-in files' temp folder, the egress
 * proxy's gateway address and port; the image's accounts are known, as
 * after any first run of an image). Seen through a recording proxy on a unix
 * socket in front of the real engine, for a plain run, an --egress run, a copy
 * mode and a review mode run (Docker) and a plain, a copy and a review mode
 * run on Podman.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENGINE_SOCKET, IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const root = mkdtempSync(join(tmpdir(), "sandbox-final-body-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const CAN_EGRESS = !IS_PODMAN && process.getuid?.() === 0;

type Body = { Env: string[]; Labels: Record<string, string>; HostConfig: { Mounts: Array<{ Source?: string }>; SecurityOpt: string[]; Dns?: string[] } } & Record<string, unknown>;

/** A unix socket that relays to the engine and keeps every create body it sees. */
async function recordingEngine(): Promise<{ host: string; bodies: Body[]; close: () => void }> {
  const socketPath = join(root, `engine-${randomBytes(3).toString("hex")}.sock`);
  const bodies: Body[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ path: ENGINE_SOCKET, allowHalfOpen: true });
    let pending = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const head = pending.indexOf("\r\n\r\n");
        if (head < 0) return;
        const headers = pending.subarray(0, head).toString("latin1");
        if (!/^POST \S*\/containers\/create\b/.test(headers)) {
          // Not a create: only the request line matters; keep scanning from the next request.
          pending = Buffer.alloc(0);
          return;
        }
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? Number.NaN);
        if (!Number.isFinite(length) || pending.length < head + 4 + length) return;
        bodies.push(JSON.parse(pending.subarray(head + 4, head + 4 + length).toString("utf8")) as Body);
        pending = pending.subarray(head + 4 + length);
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { host: `unix://${socketPath}`, bodies, close: () => server.close() };
}

/**
 * The documented run-time values, put in the form --dry-run shows them: the
 * profile as its hash (what the dry run prints instead of 30 kB of JSON, so
 * the hash proves the same text was sent), the start time, the stand-in
 * folder, the proxy's gateway address and port.
 */
function asDryRunShowsIt(body: Body, dry: Body): Body {
  const proxy = /^(?:https?|all)_proxy=http:\/\/([\d.]+):(\d+)$/i;
  const gateway = body.Env.map((e) => proxy.exec(e)?.[1]).find(Boolean);
  const shownProxy = dry.Env.map((e) => /^HTTP_PROXY=http:\/\/(.+)$/.exec(e)?.[1]).find(Boolean);
  const Env = body.Env.map((e) => (gateway && proxy.test(e) ? e.replace(/http:\/\/.*$/, `http://${shownProxy}`) : e));
  const SecurityOpt = body.HostConfig.SecurityOpt.map((opt) => {
    const json = opt.startsWith("seccomp={") ? opt.slice("seccomp=".length) : undefined;
    if (json === undefined) return opt;
    const shown = dry.HostConfig.SecurityOpt.find((o) => o.startsWith("seccomp=<")) ?? "";
    const kind = /^seccomp=<(\w+) profile/.exec(shown)?.[1];
    return `seccomp=<${kind} profile sha256:${createHash("sha256").update(json).digest("hex")} (${json.length} bytes)>`;
  });
  const standIns = new Set(dry.HostConfig.Mounts.map((m) => m.Source).filter((s) => s?.startsWith("<sandbox: ")));
  const Mounts = body.HostConfig.Mounts.map((m, i) => {
    const shown = dry.HostConfig.Mounts[i]?.Source;
    return m.Source?.includes("/sandbox-mask-") && shown && standIns.has(shown) ? { ...m, Source: shown } : m;
  });
  // Review mode: the run's change set folder, shown as a placeholder (docs/review.md).
  const changeSet = (text: string) => text.replace(/\/[^,:]*\/sandbox\/changes\/\d{8}-\d{6}-[0-9a-f]{6}\//g, "<state>/sandbox/changes/<id>/");
  const reviewed = JSON.parse(changeSet(JSON.stringify({ Mounts, Binds: (body.HostConfig as { Binds?: string[] }).Binds })));
  return {
    ...body,
    Env,
    Labels: { ...body.Labels, "io.sandbox.created": dry.Labels["io.sandbox.created"] as string },
    HostConfig: { ...body.HostConfig, SecurityOpt, ...reviewed, ...(gateway && body.HostConfig.Dns ? { Dns: dry.HostConfig.Dns } : {}) },
  };
}

async function compare(name: string, flags: string[]): Promise<{ dry: Body; sent: Body }> {
  const ws = join(root, name);
  mkdirSync(join(ws, ".git", "hooks"), { recursive: true });
  writeFileSync(join(ws, ".git", "config"), "[core]\n");
  writeFileSync(join(ws, ".env"), "SECRET=1\n");
  const engine = await recordingEngine();
  try {
    const argv = ["run", "--name", `sandbox-final-${name}-${randomBytes(3).toString("hex")}`, "--image", TEST_IMAGE, ...flags, "true"];
    const env = { DOCKER_HOST: engine.host };
    // The image's accounts are read on its first run and cached; after that --dry-run knows them too.
    expect((await runSandbox(["run", "--image", TEST_IMAGE, "true"], { cwd: ws })).code).toBe(0);
    const dryRun = await runSandbox(["run", "--dry-run", ...argv.slice(1)], { cwd: ws, env });
    expect(dryRun.stderr).not.toContain("error");
    expect(dryRun.code).toBe(0);
    const shown = JSON.parse(dryRun.stdout.toString()) as { create: Body; engine: string; assumed: Record<string, string> };
    expect(shown.engine).toBe(IS_PODMAN ? "podman" : "docker");
    expect(shown.assumed.engine).toBeUndefined(); // the engine answered: nothing assumed about it
    const real = await runSandbox([...argv.slice(0, 1), "--quiet", ...argv.slice(1)], { cwd: ws, env });
    expect(real.stderr).toBe("");
    expect(real.code).toBe(0);
    expect(engine.bodies.length).toBe(1);
    const sent = engine.bodies[0] as Body;
    expect(asDryRunShowsIt(sent, shown.create)).toEqual(shown.create);
    return { dry: shown.create, sent };
  } finally {
    engine.close();
  }
}

describe("the body the engine receives is the body --dry-run printed", () => {
  test("a plain run (secret masked by a stand-in, .git protected)", async () => {
    const { sent } = await compare("plain", []);
    // The comparison covered the run-time values, so they really differed where they should.
    expect(sent.HostConfig.Mounts.some((m) => m.Source?.includes("/sandbox-mask-"))).toBe(true);
    expect(sent.HostConfig.SecurityOpt.some((o) => o.startsWith(IS_PODMAN ? "seccomp=/" : "seccomp={"))).toBe(true);
    expect((sent.HostConfig as { AutoRemove?: boolean }).AutoRemove).toBe(!IS_PODMAN);
  });

  test("a --workspace-mode copy run (no bind mounts inside the workspace, no AutoRemove)", async () => {
    const { sent } = await compare("copy", ["--workspace-mode", "copy"]);
    expect(sent.HostConfig.Mounts.some((m) => m.Source?.includes("/sandbox-mask-"))).toBe(false);
    expect((sent.HostConfig as { AutoRemove?: boolean }).AutoRemove).toBe(false);
  });

  test("a --workspace-mode review run (the workspace an overlay's lower layer, the change set's folders shown as placeholders)", async () => {
    const { dry, sent } = await compare("review", ["--workspace-mode", "review"]);
    expect(JSON.stringify(dry.HostConfig)).toContain("upperdir=<state>/sandbox/changes/<id>/upper");
    expect(JSON.stringify(sent.HostConfig)).toMatch(/upperdir=\/[^,]*\/sandbox\/changes\/\d{8}-\d{6}-[0-9a-f]{6}\/upper/);
    expect(sent.HostConfig.Mounts.some((m) => m.Source?.endsWith("/review"))).toBe(false);
  });

  test.skipIf(!CAN_EGRESS)("an --egress run (proxy variables and DNS at the run's gateway)", async () => {
    const { dry, sent } = await compare("egress", ["--egress", "allowed.test"]);
    expect(dry.Env).toContain("HTTP_PROXY=http://<egress gateway>:3128");
    expect(sent.Env.some((e) => /^HTTP_PROXY=http:\/\/\d+\.\d+\.\d+\.\d+:\d+$/.test(e))).toBe(true);
  });
});
