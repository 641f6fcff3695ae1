/**
 * The host's proxy for an egress run, as the CLI plans it: named in the plan
 * and the info line without its credentials; an unusable one stops the run.
 */
import { expect, test } from "bun:test";
import { planUpstreamProxy } from "../../src/cli/upstream-proxy.ts";
import { UsageError } from "../../src/core/errors.ts";

test("none set: nothing", async () => {
  expect(await planUpstreamProxy({ PATH: "/bin", NO_PROXY: "x" })).toBeUndefined();
});

test("the plan and the line name the proxy, never the password", async () => {
  const plan = await planUpstreamProxy({ HTTPS_PROXY: "http://me:s3cret@proxy.corp.example:3128", HTTP_PROXY: "http://me:s3cret@proxy.corp.example:3128", NO_PROXY: ".corp.example" });
  expect(plan?.shown).toEqual({ https: "http://proxy.corp.example:3128", http: "http://proxy.corp.example:3128", noProxy: ".corp.example" });
  expect(plan?.info).toBe(
    'egress: the proxy connects through http://proxy.corp.example:3128 (HTTPS_PROXY, HTTP_PROXY); hosts in NO_PROXY go direct; the allow-list still decides, but where a name points is that proxy\'s to check (docs/egress.md, "Behind a proxy")',
  );
  expect(JSON.stringify(plan?.shown) + (plan?.info ?? "")).not.toContain("s3cret");
  const https = await planUpstreamProxy({ https_proxy: "proxy:8080" });
  expect(https?.info).toStartWith("egress: the proxy connects through http://proxy:8080 for HTTPS (https_proxy); the allow-list");
});

test("an unusable proxy stops the run with a usage error, its password unquoted", async () => {
  const err = await planUpstreamProxy({ HTTPS_PROXY: "socks5://me:s3cret@proxy:1080" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UsageError);
  expect((err as UsageError).exitCode).toBe(125);
  expect((err as UsageError).message).toBe("sandbox run: HTTPS_PROXY names a socks5:// proxy; sandbox's egress proxy talks to an upstream proxy over plain http:// only (CONNECT carries the TLS).");
  expect((err as UsageError).message).not.toContain("s3cret");
});
