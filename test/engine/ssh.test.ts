import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { hostFieldMatches, hostKeyAlgorithms, knownHostsName, verifyHostKey } from "../../src/engine/ssh.ts";

const keyA = Buffer.from("ssh-ed25519 key blob A");
const keyB = Buffer.from("ssh-ed25519 key blob B");
const b64 = (k: Buffer) => k.toString("base64");

function hashed(name: string, salt = Buffer.from("0123456789abcdef0123")): string {
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

describe("known_hosts", () => {
  test("names: host on port 22, [host]:port elsewhere", () => {
    expect(knownHostsName("h", 22)).toBe("h");
    expect(knownHostsName("h", 2222)).toBe("[h]:2222");
  });

  test("host fields: lists, wildcards, negation, hashed names", () => {
    expect(hostFieldMatches("a,b,c", "b")).toBe(true);
    expect(hostFieldMatches("*.example.com", "x.example.com")).toBe(true);
    expect(hostFieldMatches("*.example.com,!bad.example.com", "bad.example.com")).toBe(false);
    expect(hostFieldMatches("10.0.0.?", "10.0.0.7")).toBe(true);
    expect(hostFieldMatches(hashed("[h]:2222"), "[h]:2222")).toBe(true);
    expect(hostFieldMatches(hashed("[h]:2222"), "h")).toBe(false);
  });

  test("the presented key must be the recorded one", () => {
    const file = `# comment\nh ssh-ed25519 ${b64(keyA)}\n[h]:2222 ssh-ed25519 ${b64(keyB)} me@laptop\n`;
    expect(verifyHostKey(file, "h", 22, keyA)).toEqual({ kind: "match" });
    expect(verifyHostKey(file, "h", 22, keyB)).toEqual({ kind: "mismatch", line: 2 });
    expect(verifyHostKey(file, "h", 2222, keyB)).toEqual({ kind: "match" });
    expect(verifyHostKey(file, "other", 22, keyA)).toEqual({ kind: "unknown" });
    expect(verifyHostKey(undefined, "h", 22, keyA)).toEqual({ kind: "unknown" });
  });

  test("@revoked refuses, @cert-authority lines are not host keys", () => {
    const file = `@revoked h ssh-ed25519 ${b64(keyA)}\n@cert-authority h ssh-ed25519 ${b64(keyB)}\n`;
    expect(verifyHostKey(file, "h", 22, keyA)).toEqual({ kind: "revoked", line: 1 });
    expect(verifyHostKey(file, "h", 22, keyB)).toEqual({ kind: "unknown" });
  });

  test("only the key types known for the host are offered, RSA with its SHA-2 signatures", () => {
    const file = `h ssh-rsa ${b64(keyA)}\nh ecdsa-sha2-nistp256 ${b64(keyB)}\nother ssh-ed25519 ${b64(keyA)}\n`;
    expect(hostKeyAlgorithms(file, "h", 22)).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256"]);
    expect(hostKeyAlgorithms(file, "nobody", 22)).toBeUndefined();
  });
});
