import { describe, expect, test } from "bun:test";
import { SecurityError } from "../../src/core/errors.ts";
import type { CreateBody } from "../../src/core/engine-api.ts";
import { adaptCreateBody, engineFlavor, PODMAN_NPROC_LIMIT, podmanTmpfsOptions, podmanUlimits } from "../../src/core/engine-dialect.ts";
import { displayImageName, initExecFailure, InitFailureFilter } from "../../src/engine/dialect.ts";
import { Writable } from "node:stream";

const create = {
  Image: "i",
  HostConfig: {
    SecurityOpt: ["no-new-privileges:true", 'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}'],
    Tmpfs: { "/tmp": "rw,exec,size=1,mode=1777", "/home/sandbox": "rw,exec,size=1,mode=0700,uid=1000,gid=1000" },
    PidsLimit: 512,
    Ulimits: [{ Name: "nofile", Soft: 16384, Hard: 16384 }],
  },
} as unknown as CreateBody;

describe("engine dialects", () => {
  test("the flavor comes from /_ping's Server header", () => {
    expect(engineFlavor("Libpod/4.3.1 (linux)")).toBe("podman");
    expect(engineFlavor("Docker/20.10.24+dfsg1 (linux)")).toBe("docker");
    expect(engineFlavor(undefined)).toBe("docker");
  });

  test("Docker gets the plan's body unchanged", () => {
    expect(adaptCreateBody(create, { flavor: "docker" })).toBe(create);
  });

  test("Podman: the seccomp profile by path, tmpfs ownership by U", () => {
    const body = adaptCreateBody(create, { flavor: "podman", seccompPath: "/state/seccomp-abc.json" });
    expect(body.HostConfig.SecurityOpt).toEqual(["no-new-privileges:true", "seccomp=/state/seccomp-abc.json"]);
    expect(body.HostConfig.Tmpfs).toEqual({ "/tmp": "rw,exec,size=1,mode=1777", "/home/sandbox": "rw,exec,size=1,mode=0700,U" });
    expect(create.HostConfig.Tmpfs["/home/sandbox"]).toContain("uid=1000"); // the plan itself is not changed
  });

  test("Podman: an nproc limit it can grant without CAP_SYS_RESOURCE (its own default, 1048576, it often cannot), never below the pids limit", () => {
    const body = adaptCreateBody(create, { flavor: "podman", seccompPath: "/s.json" });
    expect(body.HostConfig.Ulimits).toEqual([
      { Name: "nofile", Soft: 16384, Hard: 16384 },
      { Name: "nproc", Soft: PODMAN_NPROC_LIMIT, Hard: PODMAN_NPROC_LIMIT },
    ]);
    expect(create.HostConfig.Ulimits).toHaveLength(1); // the plan itself is not changed
    expect(podmanUlimits([], 10_000)).toEqual([{ Name: "nproc", Soft: 10_000, Hard: 10_000 }]);
    const named = [{ Name: "nproc", Soft: 100, Hard: 200 }];
    expect(podmanUlimits(named, 512)).toBe(named);
    expect(adaptCreateBody(create, { flavor: "docker" }).HostConfig.Ulimits).toEqual([{ Name: "nofile", Soft: 16384, Hard: 16384 }]);
  });

  test("a remote Podman cannot get sandbox's profile: refused, not run unfiltered", () => {
    expect(() => adaptCreateBody(create, { flavor: "podman", seccompPath: undefined })).toThrow(SecurityError);
    const unconfined = { ...create, HostConfig: { ...create.HostConfig, SecurityOpt: ["seccomp=unconfined"] } } as CreateBody;
    expect(adaptCreateBody(unconfined, { flavor: "podman" }).HostConfig.SecurityOpt).toEqual(["seccomp=unconfined"]);
  });

  test("Podman's localhost/ prefix on local images is not shown; Docker's registry names are kept", () => {
    expect(displayImageName("localhost/sandbox-test/busybox:1", "podman")).toBe("sandbox-test/busybox:1");
    expect(displayImageName("localhost/x:1", "docker")).toBe("localhost/x:1");
    expect(displayImageName("docker.io/library/alpine:3", "podman")).toBe("docker.io/library/alpine:3");
  });

  test("tmpfs options without an owner are left alone", () => {
    expect(podmanTmpfsOptions("rw,size=1")).toBe("rw,size=1");
  });
});

describe("catatonit's exec failure (Podman's init)", () => {
  test("is recognised as not found or not executable", () => {
    expect(initExecFailure("ERROR (catatonit:6): failed to exec pid1: No such file or directory\n")).toBe("not-found");
    expect(initExecFailure("ERROR (catatonit:6): failed to exec pid1: Permission denied\n")).toBe("not-executable");
    expect(initExecFailure("ERROR: something else\n")).toBeUndefined();
  });

  test("tini's line (Docker's init) is recognised too", () => {
    expect(initExecFailure("[FATAL tini (7)] exec python3 failed: No such file or directory\n")).toBe("not-found");
    expect(initExecFailure("[FATAL tini (8)] exec /etc failed: Permission denied\n")).toBe("not-executable");
    expect(initExecFailure("[FATAL tini (8)] something else\n")).toBeUndefined();
  });

  async function through(chunks: string[]): Promise<{ out: string; filter: InitFailureFilter }> {
    let out = "";
    const sink = new Writable({
      write(chunk, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    const filter = new InitFailureFilter(sink);
    for (const c of chunks) filter.write(Buffer.from(c));
    await new Promise<void>((resolve) => filter.end(() => resolve()));
    return { out, filter };
  }

  test("the filter holds back exactly that line and passes everything else", async () => {
    const failed = await through(["ERROR (catatonit:6): failed to exec pid1: ", "No such file or directory\n"]);
    expect(failed.out).toBe("");
    expect(failed.filter.failure).toBe("not-found");

    const normal = await through(["warning: x\n", "ERROR (catatonit:6): failed to exec pid1: No such file or directory\n"]);
    expect(normal.out).toBe("warning: x\nERROR (catatonit:6): failed to exec pid1: No such file or directory\n");
    expect(normal.filter.failure).toBeUndefined();

    const partial = await through(["ERROR (cat"]);
    expect(partial.out).toBe("ERROR (cat");
  });

  test("tini's line is held back the same way", async () => {
    const failed = await through(["[FATAL tini (7)] exec python3", " failed: No such file or directory\n"]);
    expect(failed.out).toBe("");
    expect(failed.filter.failure).toBe("not-found");
    expect(failed.filter.held?.toString()).toBe("[FATAL tini (7)] exec python3 failed: No such file or directory\n");
  });

  test("output after the line shows it was the command's own: passed on byte-exact, in order", async () => {
    const line = "[FATAL tini (7)] exec x failed: No such file or directory\n";
    const later = await through([line, "more\n"]);
    expect(later.out).toBe(`${line}more\n`);
    expect(later.filter.failure).toBeUndefined();
    const same = await through([`${line}more\n`]);
    expect(same.out).toBe(`${line}more\n`);
    expect(same.filter.failure).toBeUndefined();
  });
});
