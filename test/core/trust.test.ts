import { describe, expect, test } from "bun:test";
import {
  EMPTY_TRUST_STORE,
  obeyed,
  parseTrustStore,
  serializeTrustStore,
  trustRecord,
  trustState,
  withoutTrust,
  withTrust,
} from "../../src/core/trust.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const now = new Date("2026-01-01T00:00:00Z");

describe("trust decisions", () => {
  test("nothing recorded: untrusted; the flag obeys it for one command", () => {
    expect(trustState(EMPTY_TRUST_STORE, "/w", A)).toBe("untrusted");
    expect(trustState(EMPTY_TRUST_STORE, "/w", A, true)).toBe("flag");
    expect(obeyed("untrusted")).toBe(false);
    expect(obeyed("flag")).toBe(true);
  });

  test("trusted is this content for this workspace only", () => {
    const store = withTrust(EMPTY_TRUST_STORE, "/w", A, now);
    expect(trustState(store, "/w", A)).toBe("trusted");
    expect(obeyed("trusted")).toBe(true);
    // Another workspace with the same content is not trusted (a clone elsewhere, a parent folder).
    expect(trustState(store, "/other", A)).toBe("untrusted");
    expect(trustState(store, "/w/sub", A)).toBe("untrusted");
  });

  test("a changed file is untrusted again until trusted anew, which replaces the old content", () => {
    let store = withTrust(EMPTY_TRUST_STORE, "/w", A, now);
    expect(trustState(store, "/w", B)).toBe("changed");
    expect(obeyed("changed")).toBe(false);
    store = withTrust(store, "/w", B, now);
    expect(trustState(store, "/w", B)).toBe("trusted");
    // One record per workspace: the old content is not trusted any more.
    expect(trustState(store, "/w", A)).toBe("changed");
    expect(store.records.length).toBe(1);
  });

  test("revoking forgets the workspace", () => {
    const store = withTrust(withTrust(EMPTY_TRUST_STORE, "/w", A, now), "/v", B, now);
    const { store: after, removed } = withoutTrust(store, "/w");
    expect(removed?.sha256).toBe(A);
    expect(trustState(after, "/w", A)).toBe("untrusted");
    expect(trustState(after, "/v", B)).toBe("trusted");
    expect(withoutTrust(after, "/w").removed).toBeUndefined();
  });
});

describe("the trust store's file", () => {
  test("round-trips, sorted by workspace", () => {
    const store = withTrust(withTrust(EMPTY_TRUST_STORE, "/z", A, now), "/a", B, now);
    const text = serializeTrustStore(store);
    expect(text.indexOf('"/a"')).toBeLessThan(text.indexOf('"/z"'));
    const back = parseTrustStore(text);
    expect(trustRecord(back, "/z")).toEqual({ workspace: "/z", sha256: A, trusted: now.toISOString() });
    expect(trustRecord(back, "/a")?.sha256).toBe(B);
  });

  test("no file or an empty one is an empty store", () => {
    expect(parseTrustStore(undefined)).toEqual(EMPTY_TRUST_STORE);
    expect(parseTrustStore("\n")).toEqual(EMPTY_TRUST_STORE);
  });

  test("a damaged file says what is wrong", () => {
    expect(() => parseTrustStore("{")).toThrow(/not JSON/);
    expect(() => parseTrustStore("[]")).toThrow(/not a JSON object/);
    expect(() => parseTrustStore('{"version":2,"records":[]}')).toThrow(/version/);
    expect(() => parseTrustStore('{"version":1,"records":[{"workspace":"rel","sha256":"' + A + '"}]}')).toThrow(/record 1/);
    expect(() => parseTrustStore('{"version":1,"records":[{"workspace":"/w","sha256":"short"}]}')).toThrow(/record 1/);
  });
});
