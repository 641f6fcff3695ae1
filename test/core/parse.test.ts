import { describe, expect, test } from "bun:test";
import { parseDuration, formatDuration } from "../../src/core/duration.ts";
import { parseSize, formatSize } from "../../src/core/size.ts";
import { filterHostEnv, parseEnvFlag } from "../../src/core/env-filter.ts";
import { parseEngineAddress } from "../../src/engine/address.ts";
import { negotiatedVersion } from "../../src/engine/negotiate.ts";

describe("durations", () => {
  test.each([
    ["90s", 90_000],
    ["30m", 1_800_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["2", 2000],
    ["1.5s", 1500],
  ])("%s", (text, ms) => expect(parseDuration(text)).toEqual({ ok: true, value: ms }));
  test.each(["soon", "", "10x", "m5", "5 m s"])("rejects %p", (text) => expect(parseDuration(text).ok).toBe(false));
  test("formats", () => {
    expect(formatDuration(2000)).toBe("2s");
    expect(formatDuration(90_000)).toBe("1m30s");
    expect(formatDuration(3_600_000)).toBe("1h");
  });
});

describe("sizes", () => {
  test.each([
    ["512m", 512 * 1024 ** 2],
    ["4g", 4 * 1024 ** 3],
    ["4GiB", 4 * 1024 ** 3],
    ["1.5g", 1.5 * 1024 ** 3],
    ["65536", 65536],
  ])("%s", (text, bytes) => expect(parseSize(text)).toEqual({ ok: true, value: bytes }));
  test.each(["4XB", "", "-1g", "g", "0"])("rejects %p", (text) => expect(parseSize(text).ok).toBe(false));
  test("formats", () => expect(formatSize(256 * 1024 ** 2)).toBe("256MiB"));
});

describe("env", () => {
  test("allow then block", () => {
    const d = filterHostEnv({ LANG: "x", LC_ALL: "y", MY_TOKEN: "t", TERM: "xterm", SECRET: "s" }, { allow: ["LANG", "LC_*", "TERM", "MY_*"], block: ["*_TOKEN"] });
    expect(d.forwarded).toEqual({ LANG: "x", LC_ALL: "y", TERM: "xterm" });
    expect(d.blocked).toEqual(["MY_TOKEN"]);
  });
  test("--env forms", () => {
    expect(parseEnvFlag("A=b=c")).toEqual({ name: "A", value: "b=c", fromHost: false });
    expect(parseEnvFlag("A")).toEqual({ name: "A", fromHost: true });
    expect("error" in parseEnvFlag("1A=b")).toBe(true);
  });
});

describe("engine addresses", () => {
  test("forms", () => {
    expect(parseEngineAddress("unix:///run/x.sock")).toMatchObject({ kind: "unix", socketPath: "/run/x.sock" });
    expect(parseEngineAddress("tcp://127.0.0.1:2376")).toMatchObject({ kind: "tcp", host: "127.0.0.1", port: 2376, tls: true });
    expect(parseEngineAddress("tcp://h:2375")).toMatchObject({ kind: "tcp", tls: false });
    expect(parseEngineAddress("tcp://h:2375", { tlsVerify: true })).toMatchObject({ tls: true });
    expect(parseEngineAddress("ssh://me@host")).toMatchObject({ kind: "ssh", username: "me", port: 22 });
    expect("error" in parseEngineAddress("ftp://x")).toBe(true);
  });
  test("negotiation takes the lower version", () => {
    expect(negotiatedVersion("1.41")).toBe("1.41");
    expect(negotiatedVersion("1.99")).toBe("1.44");
    expect(negotiatedVersion(undefined)).toBe("1.40");
  });
});
