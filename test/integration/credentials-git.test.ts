/**
 * Keys never enter the sandbox (issue #15), for git: `git clone` and `git
 * push` over https, inside the container, with nothing configured there,
 * against a git server that takes only the GitHub token. The "real"
 * github.com is a fake HTTPS server on this machine's loopback (certificate
 * from a test CA made with openssl, trusted with --ca-cert) that serves a
 * real bare repository through this machine's own `git http-backend` (CGI),
 * reached through SANDBOX_EGRESS_UPSTREAMS. It answers 401 to any request
 * whose Authorization is not Basic x-access-token:TOKEN, TOKEN being
 * GH_TOKEN in the sandbox process's environment only. The push is a few MiB
 * of random data, more than git's http.postBuffer (1 MiB), so git sends it
 * chunked, after its probe. Nothing leaves the machine. The proxy runs on
 * Docker only (Podman refuses --egress: egress.test.ts), so this is Docker only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeSignedServer } from "../egress/upstream-tls.ts";
import { IS_PODMAN, runSandbox } from "../helpers/sandbox.ts";

const NODE_IMAGE = "sandbox-test/node:22";
// The token the container must never hold: made here, unique per test run.
const SECRET = `ghp_test${randomBytes(16).toString("hex")}`;
const GOOD_AUTH = `Basic ${Buffer.from(`x-access-token:${SECRET}`).toString("base64")}`;
/** A host with no credential rule, served by the same fake server without authentication. */
const PLAIN = "git.plain.test";

const work = mkdtempSync(join(tmpdir(), "sandbox-cred-git-"));
const records = mkdtempSync(join(tmpdir(), "sandbox-cred-git-host-"));
const repos = join(records, "repos");
const bare = join(repos, "acme/demo.git");
/** A second repository on the same server, outside the path rule of the narrowing test. */
const other = join(repos, "acme/other.git");
const caFile = join(records, "test-ca.pem");

/** One request the fake server saw. */
interface Seen {
  host: string | undefined;
  method: string;
  url: string;
  /** What the Authorization header held: the right credential, none, or anything else. */
  auth: "right" | "absent" | "other";
  chunked: boolean;
  contentLength: string | undefined;
  expect: string | undefined;
  status: number;
}

const git = (args: string[], cwd?: string): string =>
  execFileSync("git", ["-c", "user.name=Host", "-c", "user.email=host@example.test", "-c", "init.defaultBranch=main", ...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/** The repository the fake github.com serves: one commit on main. */
function makeBareRepo(): void {
  const seed = join(records, "seed");
  mkdirSync(seed);
  git(["init", "-q"], seed);
  writeFileSync(join(seed, "README.md"), "demo\n");
  git(["add", "README.md"], seed);
  git(["commit", "-q", "-m", "initial"], seed);
  mkdirSync(join(repos, "acme"), { recursive: true });
  git(["clone", "-q", "--bare", seed, bare]);
  git(["clone", "-q", "--bare", seed, other]);
  rmSync(seed, { recursive: true, force: true });
}

/**
 * Serves a request through `git http-backend` (CGI): the request body piped
 * in as it comes (chunked or not), the CGI headers turned into the response's.
 */
function gitHttpBackend(req: IncomingMessage, res: ServerResponse, user: string | undefined): Promise<number> {
  const url = new URL(req.url ?? "/", "https://x");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    GIT_PROJECT_ROOT: repos,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ""),
    REQUEST_METHOD: req.method ?? "GET",
    CONTENT_TYPE: req.headers["content-type"] ?? "",
    REMOTE_ADDR: "127.0.0.1",
    GATEWAY_INTERFACE: "CGI/1.1",
    SERVER_PROTOCOL: "HTTP/1.1",
  };
  // An authenticated user enables receive-pack (push); anonymous users may only fetch.
  if (user !== undefined) env.REMOTE_USER = user;
  if (req.headers["content-length"] !== undefined) env.CONTENT_LENGTH = req.headers["content-length"];
  if (req.headers["content-encoding"] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers["content-encoding"];
  if (req.headers["git-protocol"] !== undefined) env.HTTP_GIT_PROTOCOL = String(req.headers["git-protocol"]);
  return new Promise((resolve) => {
    const cgi = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "inherit"] });
    req.pipe(cgi.stdin);
    cgi.stdin.on("error", () => {});
    let head = Buffer.alloc(0);
    let status = 200;
    let started = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (started) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const text = head.toString("latin1");
      const crlf = text.indexOf("\r\n\r\n");
      const lf = text.indexOf("\n\n");
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
      if (end < 0) return;
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, end).split(/\r?\n/)) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      started = true;
      res.write(head.subarray(end));
    });
    cgi.on("close", (code) => {
      if (!started) {
        status = 500;
        res.writeHead(500, { "content-type": "text/plain" });
        res.write(`git http-backend exited with ${code}\n`);
      }
      res.end();
      resolve(status);
    });
  });
}

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(records, { recursive: true, force: true });
});

describe.skipIf(IS_PODMAN)("git clone and push over https with the GitHub token added by the proxy (Docker)", () => {
  let server: Server | undefined;
  let port = 0;
  const seen: Seen[] = [];

  beforeAll(async () => {
    makeBareRepo();
    const tls = makeSignedServer(["github.com", PLAIN], "sandbox git credentials test CA");
    writeFileSync(caFile, tls.caPem);
    server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const given = req.headers.authorization;
      const auth = given === undefined ? "absent" : given === GOOD_AUTH ? "right" : "other";
      const record = (status: number) =>
        seen.push({
          host: req.headers.host,
          method: req.method ?? "",
          url: req.url ?? "",
          auth,
          chunked: /chunked/i.test(req.headers["transfer-encoding"] ?? ""),
          contentLength: req.headers["content-length"],
          expect: req.headers.expect,
          status,
        });
      // github.com takes only the token; the plain host serves anyone, read-only.
      if (req.headers.host === "github.com" && auth !== "right") {
        req.resume();
        res.writeHead(401, { "www-authenticate": 'Basic realm="GitHub"', "content-type": "text/plain" });
        res.end("authentication required\n");
        record(401);
        return;
      }
      void gitHttpBackend(req, res, auth === "right" ? "x-access-token" : undefined).then(record);
    });
    await new Promise<void>((ready) => server?.listen(0, "127.0.0.1", () => ready()));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  });

  const env = () => ({
    GH_TOKEN: SECRET,
    XDG_STATE_HOME: join(records, "state"),
    SANDBOX_EGRESS_UPSTREAMS: `github.com:443=127.0.0.1:${port},${PLAIN}:443=127.0.0.1:${port}`,
  });

  /**
   * Inside: a bare clone, a commit of a few MiB of random data, a push;
   * then a clone from the host without a rule; then a search for the token
   * everywhere the container can see. The token reaches the script
   * base64-encoded (so it is in no create body or command line) and is
   * decoded into an unexported shell variable. No git configuration but the
   * commit's author, given on the command line.
   */
  const script = (branch: string) =>
    [
      "set -e",
      "export GIT_TERMINAL_PROMPT=0",
      "cd /tmp",
      "git clone https://github.com/acme/demo.git demo",
      "cd demo",
      "head -c 4194304 /dev/urandom > blob.bin",
      "git add blob.bin",
      `git -c user.name=Agent -c user.email=agent@example.test commit -q -m "${branch} from the sandbox"`,
      "echo pushed-commit=$(git rev-parse HEAD)",
      `git push origin HEAD:${branch}`,
      "cd /tmp",
      `git clone https://${PLAIN}/acme/demo.git plain`,
      "echo plain-head=$(git -C plain rev-parse HEAD)",
      // github-git has no placeholder: GH_TOKEN stays unset (api.github.com, whose rule sets one, is not allowed here).
      'echo "env-GH_TOKEN=${GH_TOKEN-unset} env-GITHUB_TOKEN=${GITHUB_TOKEN-unset}"',
      "set +e",
      `v=$(node -e 'process.stdout.write(Buffer.from(process.argv[1], "base64").toString())' ${Buffer.from(SECRET).toString("base64")})`,
      'echo "secret-length=${#v}"',
      'if env | grep -qF "$v"; then echo LEAK-ENV; else echo CLEAN-ENV; fi',
      'if cat /proc/*/environ 2>/dev/null | grep -qaF "$v"; then echo LEAK-PROC; else echo CLEAN-PROC; fi',
      'if grep -rqsaF "$v" /work /tmp /home /etc/sandbox; then echo LEAK-FILES; else echo CLEAN-FILES; fi',
      // No credential of any kind written into git's configuration: no token, no helper, no header.
      'if cat "$HOME/.gitconfig" /tmp/demo/.git/config /tmp/plain/.git/config 2>/dev/null | grep -qiE "x-access-token|extraheader|credential|authorization|$v"; then echo LEAK-GITCONFIG; else echo CLEAN-GITCONFIG; fi',
      "exit 0",
    ].join("\n");

  const cases: Array<{ name: string; network: string[]; branch: string }> = [
    { name: "--egress github.com,git.plain.test", network: ["--egress", `github.com,${PLAIN}`], branch: "from-allow-list" },
    { name: "--network public --egress github.com", network: ["--network", "public", "--egress", "github.com"], branch: "from-public-mode" },
  ];

  for (const c of cases) {
    test(`${c.name}: clone and a chunked push reach the repository with the token; the container sees none`, async () => {
      seen.length = 0;
      const auditFile = join(records, `audit-${c.branch}.jsonl`);
      const r = await runSandbox(["run", "--image", NODE_IMAGE, ...c.network, "--ca-cert", caFile, "--audit", auditFile, "sh", "-c", script(c.branch)], {
        cwd: work,
        env: env(),
        timeoutMs: 110_000,
      });
      const out = r.stdout.toString();
      if (r.code !== 0 || !out.includes("CLEAN-FILES")) console.error(r.stderr, out, seen);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("sandbox: credentials: GH_TOKEN is added by the proxy for github.com (rule github-git");

      // The host's repository has the commit, on the branch, with the blob.
      const pushed = /pushed-commit=([0-9a-f]{40})/.exec(out)?.[1];
      expect(pushed).toBeDefined();
      expect(git(["--git-dir", bare, "rev-parse", `refs/heads/${c.branch}`])).toBe(pushed ?? "");
      expect(git(["--git-dir", bare, "log", "-1", "--format=%s", c.branch])).toBe(`${c.branch} from the sandbox`);
      expect(Number(git(["--git-dir", bare, "cat-file", "-s", `${c.branch}:blob.bin`]))).toBe(4194304);

      // github.com saw only the right credential, on every request: clone, the push's probe and its chunked pack.
      const github = seen.filter((s) => s.host === "github.com");
      expect(github.map((s) => s.auth).every((a) => a === "right")).toBe(true);
      expect(github.some((s) => s.method === "GET" && s.url.includes("service=git-upload-pack"))).toBe(true);
      expect(github.some((s) => s.method === "POST" && s.url.endsWith("/git-upload-pack") && s.status === 200)).toBe(true);
      expect(github.some((s) => s.method === "GET" && s.url.includes("service=git-receive-pack") && s.status === 200)).toBe(true);
      // git's probe before a chunked upload: a 4-byte flush packet, to learn whether it may send without logging in.
      expect(github.some((s) => s.method === "POST" && s.url.endsWith("/git-receive-pack") && s.contentLength === "4" && s.status === 200)).toBe(true);
      expect(github.some((s) => s.method === "POST" && s.url.endsWith("/git-receive-pack") && s.chunked && s.status === 200)).toBe(true);
      // The host without a rule: served, and never with a credential.
      const plain = seen.filter((s) => s.host === PLAIN);
      expect(plain.length).toBeGreaterThan(0);
      expect(plain.every((s) => s.auth === "absent")).toBe(true);
      expect(out).toContain(`plain-head=${git(["--git-dir", bare, "rev-parse", "main"])}`);

      // The container: the placeholder, never the token.
      expect(out).toContain("env-GH_TOKEN=unset env-GITHUB_TOKEN=unset\n");
      expect(out).toContain(`secret-length=${SECRET.length}\n`);
      for (const marker of ["CLEAN-ENV", "CLEAN-PROC", "CLEAN-FILES", "CLEAN-GITCONFIG"]) expect(out).toContain(marker);
      expect(out).not.toContain("LEAK-");
      expect(out).not.toContain(SECRET);
      expect(r.stderr).not.toContain(SECRET);

      // The audit: one credential line per request to github.com, rule github-git, no value.
      const text = readFileSync(auditFile, "utf8");
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(GOOD_AUTH.slice("Basic ".length));
      const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      const injected = lines.filter((l) => l.kind === "credential");
      expect(injected.length).toBe(github.length);
      expect(injected.every((l) => l.rule === "github-git" && l.host === "github.com" && l.port === 443 && l.client === "absent")).toBe(true);
      expect(injected.some((l) => l.method === "POST" && l.path === "/acme/demo.git/git-receive-pack")).toBe(true);
    }, 120_000);
  }

  test("the control: with --env GH_TOKEN the proxy adds nothing, and the server refuses the clone", async () => {
    seen.length = 0;
    const auditFile = join(records, "audit-control.jsonl");
    const r = await runSandbox(
      ["run", "--image", NODE_IMAGE, "--egress", "github.com", "--ca-cert", caFile, "--audit", auditFile, "--env", "GH_TOKEN", "sh", "-c", "GIT_TERMINAL_PROMPT=0 git clone https://github.com/acme/demo.git /tmp/demo"],
      { cwd: work, env: env(), timeoutMs: 110_000 },
    );
    expect(r.code).toBe(128);
    expect(r.stderr).toContain("sandbox: warning: GH_TOKEN is passed into the container as you asked");
    expect(r.stderr).toContain("could not read Username for 'https://github.com'");
    expect(seen.map((s) => [s.host, s.auth, s.status])).toEqual([["github.com", "absent", 401]]);
    expect(readFileSync(auditFile, "utf8")).not.toContain('"kind":"credential"');
  }, 120_000);

  test("method and path rules narrow the token: one repository, no push", async () => {
    seen.length = 0;
    const auditFile = join(records, "audit-narrow.jsonl");
    const before = git(["--git-dir", bare, "for-each-ref", "--format=%(refname) %(objectname)"]);
    const inside = [
      "export GIT_TERMINAL_PROMPT=0",
      "cd /tmp",
      "git clone -q https://github.com/acme/demo.git demo && echo demo-cloned",
      "git clone -q https://github.com/acme/other.git other || echo other-refused",
      "cd demo && echo change > change.txt && git add change.txt",
      "git -c user.name=Agent -c user.email=agent@example.test commit -q -m refused",
      "git push origin HEAD:refused || echo push-refused",
    ].join("\n");
    const rules = "!POST github.com/**/git-receive-pack,github.com/acme/demo.git/**";
    const r = await runSandbox(["run", "--image", NODE_IMAGE, "--egress", rules, "--ca-cert", caFile, "--audit", auditFile, "sh", "-c", inside], {
      cwd: work,
      env: env(),
      timeoutMs: 110_000,
    });
    const out = r.stdout.toString();
    if (!out.includes("push-refused")) console.error(r.stderr, out, seen);
    expect(r.code).toBe(0);
    expect(out).toContain("demo-cloned\n");
    expect(out).toContain("other-refused\n");
    expect(out).toContain("push-refused\n");
    expect(r.stderr).toContain("403");

    // The refused requests never reached the server; the repository is as it was.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.auth === "right" && s.url.startsWith("/acme/demo.git/"))).toBe(true);
    expect(seen.some((s) => s.method === "POST" && s.url.endsWith("/git-receive-pack"))).toBe(false);
    expect(git(["--git-dir", bare, "for-each-ref", "--format=%(refname) %(objectname)"])).toBe(before);

    // The audit has the refusals with their paths, and no value.
    const text = readFileSync(auditFile, "utf8");
    expect(text).not.toContain(SECRET);
    const lines = text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const denied = lines.filter((l) => l.decision === "deny" && l.host === "github.com");
    expect(denied.some((l) => l.path === "/acme/other.git/info/refs")).toBe(true);
    expect(denied.some((l) => l.method === "POST" && l.path === "/acme/demo.git/git-receive-pack")).toBe(true);
  }, 120_000);
});
