import { describe, expect, test } from "bun:test";
import { checkRunc, compareRunc, parseRuncVersion, runcWarning, type RuncVersion } from "../../src/core/runc-check.ts";
import type { EngineClient } from "../../src/engine/client.ts";
import { readRuntimeFacts, warnAboutEngine } from "../../src/engine/info.ts";

const runc = (runcVersion: string | undefined, runtime: string | undefined = "runc") => checkRunc({ runtime, runcVersion });

describe("parseRuncVersion", () => {
  test("reads Debian package versions, git describe output and runc --version text", () => {
    expect(parseRuncVersion("1.1.5+ds1-1+deb12u1")).toMatchObject({ major: 1, minor: 1, patch: 5, rc: undefined, upstream: "1.1.5", revision: "+ds1-1+deb12u1" });
    expect(parseRuncVersion("v1.1.12-0-g51d5e94")).toMatchObject({ major: 1, minor: 1, patch: 12, upstream: "1.1.12", revision: "" });
    expect(parseRuncVersion("1.0.0~rc93+ds1-5+deb11u3")).toMatchObject({ major: 1, minor: 0, patch: 0, rc: 93, revision: "+ds1-5+deb11u3" });
    expect(parseRuncVersion("1.2.0-rc.1")).toMatchObject({ major: 1, minor: 2, patch: 0, rc: 1 });
    expect(parseRuncVersion("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8")).toMatchObject({
      upstream: "1.1.5",
      revision: "+ds1-1+deb12u1",
    });
  });

  test("a bare commit hash or nothing has no version", () => {
    expect(parseRuncVersion("51d5e94601ceffbbd85688df1c928ecccbfa4685")).toBeUndefined();
    expect(parseRuncVersion("")).toBeUndefined();
    expect(parseRuncVersion("N/A")).toBeUndefined();
  });

  test("release candidates sort before their release", () => {
    const v = (text: string) => parseRuncVersion(text) as RuncVersion;
    expect(compareRunc(v("1.1.12"), v("1.1.11"))).toBeGreaterThan(0);
    expect(compareRunc(v("1.2.0-rc.1"), v("1.1.12"))).toBeGreaterThan(0);
    expect(compareRunc(v("1.2.0-rc.1"), v("1.2.0"))).toBeLessThan(0);
    expect(compareRunc(v("1.0.0-rc93"), v("1.0.0"))).toBeLessThan(0);
    expect(compareRunc(v("v1.1.12-0-gabc"), v("1.1.12"))).toBe(0);
  });
});

describe("checkRunc (CVE-2024-21626, fixed upstream in 1.1.12)", () => {
  test("1.1.12 and later are fixed", () => {
    for (const text of ["1.1.12", "v1.1.12-0-g51d5e94", "1.1.15+ds1-1", "1.2.0-rc.1", "1.2.5", "v1.3.0", "2.0.0"]) {
      expect(runc(text)).toMatchObject({ kind: "fixed", via: "upstream" });
    }
  });

  test("older upstream versions are vulnerable", () => {
    for (const text of ["1.1.11", "v1.1.11-0-g4bccb38", "1.1.0", "1.0.3", "1.0.0-rc93", "v1.1.12-rc.1"]) {
      expect(runc(text).kind).toBe("vulnerable");
    }
  });

  test("Debian bookworm's 1.1.5+ds1-1+deb12u1 carries the backported fix, and so do later updates", () => {
    expect(runc("1.1.5+ds1-1+deb12u1")).toEqual({ kind: "fixed", version: "1.1.5+ds1-1+deb12u1", via: "backport" });
    expect(runc("1.1.5+ds1-1+deb12u2")).toMatchObject({ kind: "fixed", via: "backport" });
    expect(runc("1.1.5+ds1-1+deb13u1")).toMatchObject({ kind: "fixed", via: "backport" });
    // Podman reports `runc --version`: the revision is on the commit line.
    expect(runc("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev")).toMatchObject({ kind: "fixed", via: "backport" });
  });

  test("the same upstream version before the Debian update, or another version's update, is vulnerable", () => {
    expect(runc("1.1.5+ds1-1")).toMatchObject({ kind: "vulnerable", distroRevision: true });
    expect(runc("1.1.5+ds1-1+deb12u0")).toMatchObject({ kind: "vulnerable" });
    expect(runc("1.1.5+ds1-1+deb11u1")).toMatchObject({ kind: "vulnerable" });
    expect(runc("1.1.4+ds1-1+deb12u1")).toMatchObject({ kind: "vulnerable" });
    expect(runc("1.1.5")).toMatchObject({ kind: "vulnerable", distroRevision: false });
  });

  test("nothing is claimed without a version, or for another runtime", () => {
    expect(runc(undefined).kind).toBe("unknown");
    expect(runc("").kind).toBe("unknown");
    expect(runc("51d5e94601ceffbbd85688df1c928ecccbfa4685").kind).toBe("unknown");
    expect(runc("1.1.5", "crun").kind).toBe("unknown");
    expect(runc("1.1.5", "runsc").kind).toBe("unknown");
    expect(runc("1.1.5", "io.containerd.runc.v2").kind).toBe("vulnerable");
    expect(runc("1.1.5", undefined).kind).toBe("vulnerable");
  });
});

describe("runcWarning", () => {
  test("only a vulnerable runc is warned about, naming the version, the CVE and the fix", () => {
    expect(runcWarning(runc("1.1.12"))).toBeUndefined();
    expect(runcWarning(runc("1.1.5+ds1-1+deb12u1"))).toBeUndefined();
    expect(runcWarning(runc(undefined))).toBeUndefined();
    const line = runcWarning(runc("v1.1.11-0-g4bccb38"));
    expect(line).toContain("1.1.11");
    expect(line).toContain("CVE-2024-21626");
    expect(line).toContain("1.1.12");
    expect(line).not.toContain("distribution");
  });

  test("an unknown distribution revision is mentioned as a possible backport", () => {
    expect(runcWarning(runc("1.1.7-0ubuntu1~22.04.1"))).toContain("unless your distribution backported the fix");
  });
});

/** Just enough of EngineClient for /info. */
function fakeEngine(answer: () => Promise<unknown>): EngineClient {
  return { json: async () => ({ status: 200, body: await answer() }) } as unknown as EngineClient;
}

describe("warnAboutEngine", () => {
  test("reads the runtime from Docker's /info", async () => {
    const engine = fakeEngine(async () => ({ DefaultRuntime: "runc", RuncCommit: { ID: "1.1.5+ds1-1+deb12u1", Expected: "1.1.5+ds1-1+deb12u1" } }));
    expect(await readRuntimeFacts(engine)).toEqual({ runtime: "runc", runcVersion: "1.1.5+ds1-1+deb12u1" });
  });

  test("warns once for a vulnerable runc", async () => {
    const lines: string[] = [];
    await warnAboutEngine(fakeEngine(async () => ({ DefaultRuntime: "runc", RuncCommit: { ID: "v1.1.9-0-gccaecfc" } })), (l) => lines.push(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("CVE-2024-21626");
  });

  test("stays quiet for a patched runc, Podman's empty RuncCommit, an error or a slow engine", async () => {
    const lines: string[] = [];
    const warn = (l: string) => lines.push(l);
    await warnAboutEngine(fakeEngine(async () => ({ DefaultRuntime: "runc", RuncCommit: { ID: "1.1.5+ds1-1+deb12u1" } })), warn);
    await warnAboutEngine(fakeEngine(async () => ({ DefaultRuntime: "runc", RuncCommit: { ID: "", Expected: "" } })), warn);
    await warnAboutEngine(fakeEngine(async () => Promise.reject(new Error("boom"))), warn);
    const started = Date.now();
    await warnAboutEngine(fakeEngine(() => new Promise(() => {})), warn, 50);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(lines).toEqual([]);
  });
});
