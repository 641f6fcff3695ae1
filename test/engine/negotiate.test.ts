import { describe, expect, test } from "bun:test";
import { CLIENT_API_VERSION, compareVersions, MIN_API_VERSION, negotiatedVersion } from "../../src/engine/negotiate.ts";

describe("API version negotiation", () => {
  test("the lower of the engine's and ours, as the docker CLI pins it", () => {
    expect(negotiatedVersion("1.41")).toBe("1.41"); // Docker 20.10, Podman 4
    expect(negotiatedVersion("1.43")).toBe("1.43");
    expect(negotiatedVersion(CLIENT_API_VERSION)).toBe(CLIENT_API_VERSION);
    expect(negotiatedVersion("1.47")).toBe(CLIENT_API_VERSION);
    expect(negotiatedVersion("2.0")).toBe(CLIENT_API_VERSION);
  });

  test("a missing or malformed header falls back to the oldest we speak", () => {
    expect(negotiatedVersion(undefined)).toBe(MIN_API_VERSION);
    expect(negotiatedVersion("")).toBe(MIN_API_VERSION);
    expect(negotiatedVersion("v1.41")).toBe(MIN_API_VERSION);
  });

  test("versions compare numerically, not as text", () => {
    expect(compareVersions("1.9", "1.10")).toBeLessThan(0);
    expect(compareVersions("1.41", "1.41")).toBe(0);
    expect(compareVersions("1.44", "1.4")).toBeGreaterThan(0);
  });
});
