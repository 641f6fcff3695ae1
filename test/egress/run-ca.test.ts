import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import * as tls from "node:tls";
import { pem } from "../../src/egress/der.ts";
import { RunCa } from "../../src/egress/run-ca.ts";
import { buildCertificate, caExtensions, leafExtensions } from "../../src/egress/x509.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sandbox-run-ca-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function openssl(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function text(certPem: string): string {
  return execFileSync("openssl", ["x509", "-noout", "-text"], { input: certPem }).toString();
}

describe("the run's CA certificate", () => {
  test("is a self-signed P-256 CA, critical basicConstraints and keyUsage, valid for the lifetime asked", () => {
    const now = new Date("2030-06-01T12:00:00.000Z");
    const ca = RunCa.create({ lifetimeMs: 2 * 3600_000, label: "sbx-test", now });
    const t = text(ca.certificatePem);
    expect(t).toContain("Version: 3 (0x2)");
    expect(t).toContain("Signature Algorithm: ecdsa-with-SHA256");
    expect(t).toMatch(/Subject: O = sandbox, CN = sandbox run CA sbx-test [0-9a-f]{8}/);
    expect(t).toContain("NIST CURVE: P-256");
    expect(t).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(t).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(t).toContain("Not Before: Jun  1 11:55:00 2030 GMT");
    expect(t).toContain("Not After : Jun  1 14:00:00 2030 GMT");
    // Self-signed: verifies against itself.
    const path = file("ca-only.pem", ca.certificatePem);
    expect(openssl(["verify", "-x509_strict", "-attime", String(Date.parse("2030-06-01T13:00:00Z") / 1000), "-CAfile", path, path]).ok).toBe(true);
  });

  test("the private keys are not reachable through the object", () => {
    const ca = RunCa.create({ lifetimeMs: 60_000 });
    ca.leaf("api.example.com");
    const shown = `${JSON.stringify(ca)}${inspect(ca, { depth: 10, showHidden: true })}${Object.values(ca).join("")}`;
    expect(shown).not.toContain("PRIVATE KEY");
    expect(Object.keys(ca).sort()).toEqual(["certificateDer", "certificatePem", "notAfter", "notBefore", "permittedNames"]);
  });
});

describe("leaf certificates", () => {
  const ca = RunCa.create({ lifetimeMs: 3600_000 });
  let caPath: string;
  beforeAll(() => {
    caPath = file("ca.pem", ca.certificatePem);
  });

  test("verify with openssl (strict, as a TLS server) for their name and no other", () => {
    const leaf = file("leaf.pem", ca.leaf("api.anthropic.com").certificatePem);
    const ok = openssl(["verify", "-x509_strict", "-purpose", "sslserver", "-verify_hostname", "api.anthropic.com", "-CAfile", caPath, leaf]);
    expect(ok.out).toContain(": OK");
    expect(openssl(["verify", "-verify_hostname", "api.openai.com", "-CAfile", caPath, leaf]).ok).toBe(false);
    const t = text(ca.leaf("api.anthropic.com").certificatePem);
    expect(t).toContain("Subject: CN = api.anthropic.com");
    expect(t).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(t).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
    expect(t).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    expect(t).toMatch(/X509v3 Subject Alternative Name:\s+DNS:api.anthropic.com/);
    expect(t).toContain("X509v3 Authority Key Identifier");
  });

  test("an IP address gets an iPAddress SAN", () => {
    const leaf = file("ip.pem", ca.leaf("10.1.2.3").certificatePem);
    expect(openssl(["verify", "-x509_strict", "-verify_ip", "10.1.2.3", "-CAfile", caPath, leaf]).out).toContain(": OK");
    expect(text(ca.leaf("10.1.2.3").certificatePem)).toMatch(/Subject Alternative Name: critical\s+IP Address:10.1.2.3/);
  });

  test("a name longer than a commonName may be has an empty subject and a critical SAN", () => {
    const long = `${"a".repeat(60)}.${"b".repeat(60)}.example.com`;
    const leafPem = ca.leaf(long).certificatePem;
    expect(openssl(["verify", "-x509_strict", "-verify_hostname", long, "-CAfile", caPath, file("long.pem", leafPem)]).out).toContain(": OK");
    expect(text(leafPem)).toMatch(/Subject: *\n/);
    expect(text(leafPem)).toMatch(/Subject Alternative Name: critical/);
  });

  test("are minted once per host (names compared as DNS does)", () => {
    expect(ca.leaf("API.Example.com.")).toBe(ca.leaf("api.example.com"));
    expect(ca.leaf("api.example.com")).not.toBe(ca.leaf("www.example.com"));
    expect(() => ca.leaf("not a host")).toThrow();
  });

  test("expire with the CA: a run's certificate vouches for nothing later", () => {
    const old = RunCa.create({ lifetimeMs: 3600_000, now: new Date(Date.now() - 2 * 86_400_000) });
    const r = openssl(["verify", "-CAfile", file("old-ca.pem", old.certificatePem), file("old-leaf.pem", old.leaf("api.example.com").certificatePem)]);
    expect(r.ok).toBe(false);
    expect(r.out).toContain("expired");
  });

  test("a real TLS handshake in this runtime verifies against the CA, and fails without it", async () => {
    // Bun's tls.createServer ignores a `secureContext` option (the handshake fails with internal_error); SNICallback takes one.
    const server = tls.createServer({ SNICallback: (name, cb) => cb(null, ca.leaf(name).secureContext), ALPNProtocols: ["http/1.1"] }, (s) => s.end("hi"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const attempt = (opts: tls.ConnectionOptions) =>
      new Promise<{ authorized: boolean; data: string } | { error: string }>((resolve) => {
        const c = tls.connect({ host: "127.0.0.1", port, servername: "api.example.com", ...opts }, () => {
          let data = "";
          c.on("data", (d: Buffer) => (data += d.toString()));
          c.on("end", () => resolve({ authorized: c.authorized, data }));
        });
        c.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
      });
    try {
      expect(await attempt({ ca: ca.certificatePem })).toEqual({ authorized: true, data: "hi" });
      expect("error" in (await attempt({}))).toBe(true);
      expect(await attempt({ ca: RunCa.create({ lifetimeMs: 60_000 }).certificatePem })).toHaveProperty("error");
      // The leaf names api.example.com only: checked as another name, it is refused.
      const otherName = { ca: ca.certificatePem, checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity("other.example.com", cert) };
      expect(await attempt(otherName)).toHaveProperty("error", "ERR_TLS_CERT_ALTNAME_INVALID");
    } finally {
      server.close();
    }
  });
});

describe("name constraints", () => {
  test("a constrained CA covers its names and the names below them, and no IP address", () => {
    const ca = RunCa.create({ lifetimeMs: 60_000, permittedNames: ["api.anthropic.com", "github.com"] });
    expect(ca.covers("api.anthropic.com")).toBe(true);
    expect(ca.covers("uploads.github.com")).toBe(true);
    expect(ca.covers("evilgithub.com")).toBe(false);
    expect(ca.covers("anthropic.com")).toBe(false);
    expect(ca.covers("10.0.0.1")).toBe(false);
    expect(() => ca.leaf("example.com")).toThrow(/does not vouch/);
    const t = text(ca.certificatePem);
    expect(t).toMatch(/X509v3 Name Constraints: critical\s+Permitted:\s+DNS:api.anthropic.com\s+DNS:github.com\s+Excluded:\s+IP:0.0.0.0\/0.0.0.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/);
    const caPath = file("constrained.pem", ca.certificatePem);
    expect(openssl(["verify", "-x509_strict", "-CAfile", caPath, file("c-leaf.pem", ca.leaf("github.com").certificatePem)]).out).toContain(": OK");
  });

  test("clients refuse a certificate outside them, even one the CA's key signed", () => {
    // Built with x509.ts directly and a key the test holds: what the constraint stops if a leaf were ever minted outside it.
    const caKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const leafKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const caSpki = new Uint8Array(caKey.publicKey.export({ type: "spki", format: "der" }));
    const leafSpki = new Uint8Array(leafKey.publicKey.export({ type: "spki", format: "der" }));
    const signer = (tbs: Uint8Array) => new Uint8Array(sign("sha256", tbs, caKey.privateKey));
    const name = { commonName: "constrained test CA" };
    const notBefore = new Date(Date.now() - 60_000);
    const notAfter = new Date(Date.now() + 3600_000);
    const caPem = pem("CERTIFICATE", buildCertificate({ serial: Uint8Array.of(1), issuer: name, subject: name, notBefore, notAfter, publicKey: caSpki, extensions: caExtensions(caSpki, ["api.anthropic.com"]) }, signer));
    const leafFor = (host: string) =>
      pem("CERTIFICATE", buildCertificate({ serial: Uint8Array.of(2), issuer: name, subject: { commonName: host }, notBefore, notAfter, publicKey: leafSpki, extensions: leafExtensions(leafSpki, caSpki, { dns: host }, false) }, signer));
    const caPath = file("nc-ca.pem", caPem);
    expect(openssl(["verify", "-CAfile", caPath, file("nc-ok.pem", leafFor("api.anthropic.com"))]).out).toContain(": OK");
    const refused = openssl(["verify", "-CAfile", caPath, file("nc-bad.pem", leafFor("evil.example.com"))]);
    expect(refused.ok).toBe(false);
    expect(refused.out).toContain("subtree violation");
  });
});
