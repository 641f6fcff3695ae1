import { describe, expect, test } from "bun:test";
import { BUILTIN_CREDENTIALS } from "../../src/core/builtin-credentials.ts";
import { PLACEHOLDER, type CredentialRule } from "../../src/core/credentials.ts";
import { Secret } from "../../src/core/secret.ts";
import { parseHead, type RequestHead } from "../../src/egress/http1.ts";
import { auditPath, injectCredential, tunnelRequestProblem } from "../../src/egress/inject.ts";

function head(text: string): RequestHead {
  const parsed = parseHead(Buffer.from(`${text.replace(/\n/g, "\r\n")}\r\n\r\n`, "latin1"));
  if ("why" in parsed) throw new Error(parsed.why);
  return parsed;
}

const rule = (name: string): CredentialRule => {
  const found = BUILTIN_CREDENTIALS.find((r) => r.name === name);
  if (!found) throw new Error(name);
  return found;
};

describe("requests inside an intercepted tunnel", () => {
  test("must name the tunnel's host and be origin-form", () => {
    const host = "api.anthropic.com";
    expect(tunnelRequestProblem(head("POST /v1/messages HTTP/1.1\nHost: api.anthropic.com"), host)).toBeUndefined();
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: API.Anthropic.com.:443"), host)).toBeUndefined();
    expect(tunnelRequestProblem(head("OPTIONS * HTTP/1.1\nHost: api.anthropic.com"), host)).toBeUndefined();
    // Echoes and authority-looking paths never get a credential.
    expect(tunnelRequestProblem(head("TRACE / HTTP/1.1\nHost: api.anthropic.com"), host)?.status).toBe(405);
    expect(tunnelRequestProblem(head("TRACK / HTTP/1.1\nHost: api.anthropic.com"), host)?.status).toBe(405);
    expect(tunnelRequestProblem(head("GET //echo.test/x HTTP/1.1\nHost: api.anthropic.com"), host)).toEqual({ status: 400, why: "the request target starts with //" });
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: someone-else.example"), host)).toEqual({ status: 421, why: "the Host header names someone-else.example, not api.anthropic.com" });
    expect(tunnelRequestProblem(head("GET / HTTP/1.1"), host)).toEqual({ status: 400, why: "no Host header" });
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com\nHost: evil.example"), host)).toEqual({ status: 400, why: "more than one Host header" });
    expect(tunnelRequestProblem(head("GET https://evil.example/ HTTP/1.1\nHost: api.anthropic.com"), host)?.why).toContain("origin-form");
    expect(tunnelRequestProblem(head("CONNECT evil.example:443 HTTP/1.1\nHost: api.anthropic.com"), host)?.why).toContain("CONNECT");
  });

  test("must name the tunnel's port: absent means 443", () => {
    const host = "api.anthropic.com";
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com:443"), host, 443)).toBeUndefined();
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com:"), host, 443)).toBeUndefined();
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com:80"), host, 443)).toEqual({ status: 421, why: "the Host header names api.anthropic.com:80, not port 443" });
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com:0443x"), host, 443)?.status).toBe(421);
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com:8443"), host, 8443)).toBeUndefined();
    expect(tunnelRequestProblem(head("GET / HTTP/1.1\nHost: api.anthropic.com"), host, 8443)).toEqual({ status: 421, why: "the Host header names api.anthropic.com, not port 8443 (without a port it means 443)" });
  });
});

describe("injecting a credential", () => {
  test("replaces every value the client sent under the rule's header and keeps the rest as it came", () => {
    const h = head(`POST /v1/messages?beta=true HTTP/1.1\nHost: api.anthropic.com\nX-Api-Key: ${PLACEHOLDER}\nx-api-key: second\nContent-Length: 2\nConnection: keep-alive\nProxy-Authorization: Basic Zm9v\nAnthropic-Version: 2023-06-01`);
    const out = injectCredential(h, rule("anthropic-api-key"), new Secret("sk-ant-real"));
    if ("why" in out) throw new Error(out.why);
    expect(out.head).toBe(
      "POST /v1/messages?beta=true HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Length: 2\r\nConnection: keep-alive\r\nAnthropic-Version: 2023-06-01\r\nx-api-key: sk-ant-real\r\n\r\n",
    );
    expect(out.client).toBe("other");
    expect(out.framing).toEqual({ kind: "length", length: 2 });
    expect(out.upgrade).toBe(false);
  });

  test("adds the header when the client sent none; Basic for git", () => {
    const out = injectCredential(head("GET /o/r.git/info/refs?service=git-upload-pack HTTP/1.1\nHost: github.com"), rule("github-git"), new Secret("ghp_abc"));
    if ("why" in out) throw new Error(out.why);
    expect(out.head).toContain(`\r\nauthorization: Basic ${Buffer.from("x-access-token:ghp_abc").toString("base64")}\r\n`);
    expect(out.client).toBe("absent");
  });

  test("recognises the placeholder, chunked bodies and upgrades; refuses ambiguous framing", () => {
    const out = injectCredential(head(`POST /x HTTP/1.1\nHost: api.openai.com\nAuthorization: Bearer ${PLACEHOLDER}\nTransfer-Encoding: chunked`), rule("openai-api-key"), new Secret("sk-1"));
    if ("why" in out) throw new Error(out.why);
    expect(out.client).toBe("placeholder");
    expect(out.framing).toEqual({ kind: "chunked" });
    const ws = injectCredential(head("GET /ws HTTP/1.1\nHost: api.openai.com\nConnection: Upgrade\nUpgrade: websocket"), rule("openai-api-key"), new Secret("sk-1"));
    expect("why" in ws ? ws.why : ws.upgrade).toBe(true);
    const bad = injectCredential(head("POST /x HTTP/1.1\nHost: api.openai.com\nContent-Length: 3\nTransfer-Encoding: chunked"), rule("openai-api-key"), new Secret("sk-1"));
    expect(bad).toEqual({ why: "both Transfer-Encoding and Content-Length" });
  });

  test("the audit gets the path without its query", () => {
    expect(auditPath("/v1/models?key=abc")).toBe("/v1/models");
    expect(auditPath(`/${"a".repeat(2000)}`).length).toBe(1025);
  });
});
