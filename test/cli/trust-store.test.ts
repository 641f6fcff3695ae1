import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTrustStore, trustStorePath, workspaceTrust, writeTrustStore } from "../../src/cli/trust-store.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { EMPTY_TRUST_STORE, trustRecord, withTrust } from "../../src/core/trust.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "sandbox-trust-store-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const A = "a".repeat(64);

describe("the trust records on disk", () => {
  test("live under XDG_STATE_HOME (default ~/.local/state)/sandbox/trust.json", () => {
    expect(trustStorePath({ XDG_STATE_HOME: "/s" }, "/home/me")).toBe("/s/sandbox/trust.json");
    expect(trustStorePath({}, "/home/me")).toBe("/home/me/.local/state/sandbox/trust.json");
  });

  test("are written atomically, 0600, in a 0700 folder, and read back", () => {
    const path = join(root, "fresh", "sandbox", "trust.json");
    expect(readTrustStore(path)).toEqual(EMPTY_TRUST_STORE);
    writeTrustStore(path, withTrust(EMPTY_TRUST_STORE, "/w", A, new Date()));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "fresh", "sandbox")).mode & 0o777).toBe(0o700);
    expect(trustRecord(readTrustStore(path), "/w")?.sha256).toBe(A);
    // No temporary file is left beside it.
    expect(readdirSync(join(root, "fresh", "sandbox"))).toEqual(["trust.json"]);
  });

  test("a damaged file is an error naming it; the flag still obeys the workspace file", () => {
    const state = join(root, "damaged");
    mkdirSync(join(state, "sandbox"), { recursive: true });
    writeFileSync(join(state, "sandbox", "trust.json"), "{nope");
    expect(() => readTrustStore(join(state, "sandbox", "trust.json"))).toThrow(ConfigError);
    expect(() => workspaceTrust({ XDG_STATE_HOME: state }, "/home/me", root, false)(A)).toThrow(/trust\.json/);
    expect(workspaceTrust({ XDG_STATE_HOME: state }, "/home/me", root, true)(A)).toBe("flag");
  });

  test("the workspace is looked up by its real path", () => {
    const state = join(root, "real");
    const ws = join(root, "ws");
    mkdirSync(ws);
    symlinkSync(ws, join(root, "ws-link"));
    writeTrustStore(trustStorePath({ XDG_STATE_HOME: state }, "/home/me"), withTrust(EMPTY_TRUST_STORE, ws, A, new Date()));
    expect(workspaceTrust({ XDG_STATE_HOME: state }, "/home/me", join(root, "ws-link"), false)(A)).toBe("trusted");
    expect(workspaceTrust({ XDG_STATE_HOME: state }, "/home/me", join(root, "ws-link"), false)("b".repeat(64))).toBe("changed");
  });
});
