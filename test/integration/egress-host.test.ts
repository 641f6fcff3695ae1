/**
 * The host is not a destination (docs/egress.md, "The host"): from an
 * --egress run, a host service listening on all addresses answers neither on
 * the run's gateway nor on docker0's address, another sandbox's server is
 * out of reach, and only the proxy's port answers. sandbox adds the host
 * firewall rules itself when it may (root here); they are gone after the
 * run. Docker only: --egress is refused on Podman (egress.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testEngine } from "../helpers/engine.ts";
import { IS_PODMAN, runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const IS_ROOT = process.getuid?.() === 0 && spawnSync("iptables-restore", ["--version"]).status === 0;
const work = mkdtempSync(join(tmpdir(), "sandbox-egress-host-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function inputRules(): string {
  return execFileSync("iptables", ["-w", "-S", "INPUT"]).toString();
}

describe.skipIf(IS_PODMAN || !IS_ROOT)("an --egress run and the host", () => {
  let server: Server;
  let port = 0;
  let docker0 = "";
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      seen.push(socket.remoteAddress ?? "?");
      socket.end("HOST-SERVICE\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
    port = (server.address() as { port: number }).port;
    const engine = await testEngine();
    const bridge = await engine.json<{ IPAM: { Config: Array<{ Gateway?: string }> } }>({ method: "GET", path: "/networks/bridge", ok: [200] });
    docker0 = bridge.body.IPAM.Config.find((c) => c.Gateway)?.Gateway ?? "";
  });
  afterAll(() => server?.close());

  test("host services answer neither on the gateway nor on docker0; the proxy does; the rules go with the run", async () => {
    expect(docker0).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // The host service is up: the same probe from the default bridge reaches it (what the rules take away).
    const open = await runSandbox(["run", "--image", TEST_IMAGE, "--network", "bridge", "sh", "-c", `nc -w 3 ${docker0} ${port} </dev/null`], { cwd: work });
    expect(open.stdout.toString()).toContain("HOST-SERVICE");

    const script = [
      'gw=$(echo "$HTTP_PROXY" | sed -e "s|http://||" -e "s|:.*||")',
      'pp=$(echo "$HTTP_PROXY" | sed -e "s|.*:||" -e "s|/.*||")',
      `echo "gateway:$(nc -w 3 $gw ${port} </dev/null 2>&1)"`,
      `echo "docker0:$(nc -w 3 ${docker0} ${port} </dev/null 2>&1)"`,
      // The proxy's own port still answers (with its refusal of a name not on the list).
      'printf "GET http://not-listed.test/ HTTP/1.1\\r\\nHost: not-listed.test\\r\\nConnection: close\\r\\n\\r\\n" | nc -w 3 $gw $pp | head -1',
    ].join("; ");
    const before = inputRules();
    const during: string[] = [];
    const chunks: Buffer[] = [];
    const name = `sandbox-egress-host-${process.pid}`;
    const r = await runSandbox(["run", "--name", name, "--image", TEST_IMAGE, "--egress", "allowed.test", "sh", "-c", script], {
      cwd: work,
      stdoutSink: (chunk) => {
        if (chunks.length === 0) during.push(inputRules());
        chunks.push(chunk);
      },
    });
    const out = Buffer.concat(chunks).toString();
    expect(r.stderr).not.toContain("could not add its firewall rules");
    // Dropped, not refused: the connection times out.
    expect(out).toMatch(/^gateway:(nc: timed out)?$/m);
    expect(out).toMatch(/^docker0:(nc: timed out)?$/m);
    expect(out).not.toContain("HOST-SERVICE");
    expect(out).toContain("HTTP/1.1 403");
    // The run's own rules (named for its network) were in place during the run, and are gone after.
    const ours = `sandbox egress ${name}-egress"`;
    expect(before).not.toContain(ours);
    expect(during.join("\n").split(ours).length - 1).toBe(2);
    expect(inputRules()).not.toContain(ours);
  });

  test("another sandbox's server is out of reach", async () => {
    const name = `sandbox-egress-peer-${process.pid}`;
    const peer = runSandbox(["run", "--image", TEST_IMAGE, "--network", "bridge", "--name", name, "--timeout", "60s", "sh", "-c", "hostname -i > /work/peer-ip; while true; do echo PEER | nc -l -p 8080; done"], { cwd: work });
    try {
      let ip = "";
      for (let i = 0; i < 200 && !ip; i++) {
        await Bun.sleep(50);
        ip = (spawnSync("cat", [join(work, "peer-ip")]).stdout?.toString() ?? "").trim();
      }
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      // It serves: a sandbox on the same bridge gets its answer.
      const control = await runSandbox(["run", "--image", TEST_IMAGE, "--network", "bridge", "sh", "-c", `nc -w 3 ${ip} 8080 </dev/null`], { cwd: work });
      expect(control.stdout.toString()).toContain("PEER");
      const r = await runSandbox(["run", "--image", TEST_IMAGE, "--egress", "allowed.test", "sh", "-c", `echo "peer:$(nc -w 3 ${ip} 8080 </dev/null 2>&1)"`], { cwd: work });
      expect(r.stdout.toString()).toMatch(/^peer:(nc: timed out)?$/m);
      expect(r.stdout.toString()).not.toContain("PEER");
    } finally {
      await (await testEngine()).json({ method: "POST", path: `/containers/${name}/kill`, ok: [204], expected: [404, 409] }).catch(() => {});
      await peer.catch(() => {});
    }
  });
});
