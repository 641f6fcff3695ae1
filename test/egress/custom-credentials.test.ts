/**
 * A credential rule of the user's own (config `credentials:`), end to end on
 * loopback: the config text through the real loader and settings table, the
 * plan and the value sources (a file under ~ and a command), then curl
 * through the egress proxy to a fake HTTPS origin with a test CA's
 * certificate, which sees the header the rule describes.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentialRules } from "../../src/cli/credentials.ts";
import { effectiveSettings, loadConfig } from "../../src/config/load.ts";
import { parseYaml } from "../../src/config/yaml.ts";
import { PLACEHOLDER, permittedNames } from "../../src/core/credentials.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { AuditLog } from "../../src/egress/audit.ts";
import { selectCredentialRules } from "../../src/egress/credential-plan.ts";
import { resolveCredentials } from "../../src/egress/credential-source.ts";
import { CredentialInterceptor, type InjectionEvent } from "../../src/egress/intercept.ts";
import { EgressProxy } from "../../src/egress/proxy.ts";
import { tableResolver } from "../../src/egress/resolve.ts";
import { RunCa } from "../../src/egress/run-ca.ts";
import { curlVia, fakeOrigin, LOOP, type Origin } from "./fake-hosts.ts";
import { makeSignedServer, writePem } from "./upstream-tls.ts";

const FILE_TOKEN = `corp-${randomBytes(8).toString("hex")}`;
const COMMAND_TOKEN = `vault-${randomBytes(8).toString("hex")}`;

let dir: string;
let origin: Origin;
let proxy: EgressProxy;
let proxyPort: number;
let runCaPath: string;
const events: InjectionEvent[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sandbox-custom-credentials-"));
  const home = join(dir, "home");
  mkdirSync(join(home, ".config", "sandbox"), { recursive: true });
  mkdirSync(join(home, ".corp"), { recursive: true });
  writeFileSync(join(home, ".corp", "token"), `${FILE_TOKEN}\n`);
  writeFileSync(
    join(home, ".config", "sandbox", "config.yaml"),
    `
credentials:
  - name: corp-api
    hosts: "*.corp.example"
    header: x-corp-key
    format: "Key {value}"
    env: CORP_TOKEN_UNSET
    file: ~/.corp/token
  - name: vault
    hosts: vault.test
    header: authorization
    format: basic
    username: robot
    command: [sh, -c, "printf %s ${COMMAND_TOKEN}"]
    placeholder: VAULT_TOKEN
`,
  );
  const workspace = join(dir, "project");
  mkdirSync(workspace);
  const loaded = loadConfig({ env: {}, homeDir: home, workspace, readFile: (p) => (existsSync(p) ? readFileSync(p, "utf8") : undefined), parseYaml });
  const rules = credentialRules(effectiveSettings(loaded).credentials.value);

  // A wildcard rule is used when the allow-list lets every name below it through (credential-plan.ts).
  const allow = parseAllowList(["*.corp.example", "vault.test"]);
  if (!allow.ok) throw new Error(allow.error);
  const selection = selectCredentialRules(rules, allow.value, new Set());
  expect(selection.candidates.map((r) => r.name)).toEqual(["corp-api", "vault"]);
  const resolved = await resolveCredentials(selection.candidates, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, homeDir: home, cwd: workspace });
  expect(resolved.used.map((c) => [c.rule.name, c.from])).toEqual([
    ["corp-api", "file ~/.corp/token"],
    ["vault", `\`sh -c printf %s ${COMMAND_TOKEN}\``],
  ]);

  const server = makeSignedServer(["api.corp.example", "vault.test"], "custom credentials test CA");
  origin = await fakeOrigin(server);
  const ca = RunCa.create({ lifetimeMs: 600_000, permittedNames: permittedNames(resolved.used.map((c) => c.rule)), label: "custom-credentials-test" });
  runCaPath = writePem(dir, "run-ca.pem", ca.certificatePem);
  proxy = new EgressProxy({
    allow: allow.value,
    audit: new AuditLog(),
    resolve: tableResolver(new Map()),
    intercept: new CredentialInterceptor({ ca, credentials: resolved.used, upstreamCa: [server.caPem], onInjection: (e) => events.push(e), handshakeTimeoutMs: 5000 }),
    upstreamOverrides: new Map([
      ["api.corp.example:443", { host: LOOP, port: origin.port }],
      ["vault.test:443", { host: LOOP, port: origin.port }],
    ]),
  });
  proxyPort = (await proxy.listen(LOOP, 0)).port;
});

afterAll(async () => {
  await proxy?.close();
  await origin?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a custom rule's header, format and file source reach the origin; the client keeps its placeholder", async () => {
  const r = await curlVia(proxyPort, ["--cacert", runCaPath, "-H", `x-corp-key: ${PLACEHOLDER}`, "https://api.corp.example/v1/items"], dir);
  expect(r.stderr).toBe("");
  expect(JSON.parse(r.stdout)).toMatchObject({ url: "/v1/items", host: "api.corp.example" });
  expect(origin.seen.at(-1)?.headers["x-corp-key"]).toBe(`Key ${FILE_TOKEN}`);
  expect(events.at(-1)).toMatchObject({ host: "api.corp.example", rule: "corp-api", client: "placeholder", path: "/v1/items" });
});

test("HTTP Basic with a command's output as the password", async () => {
  const r = await curlVia(proxyPort, ["--cacert", runCaPath, "https://vault.test/v1/secret"], dir);
  expect(r.stderr).toBe("");
  expect(origin.seen.at(-1)?.headers.authorization).toBe(`Basic ${Buffer.from(`robot:${COMMAND_TOKEN}`).toString("base64")}`);
  expect(events.at(-1)).toMatchObject({ host: "vault.test", rule: "vault", client: "absent" });
  expect(JSON.stringify(events)).not.toContain(FILE_TOKEN);
});
