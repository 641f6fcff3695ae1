import { describe, expect, test } from "bun:test";
import { Readable } from "node:stream";
import { BuildFailedError, buildImage, contextTar, plainText } from "../../src/engine/build.ts";
import type { EngineClient, RequestSpec } from "../../src/engine/client.ts";
import { readTar } from "../../src/engine/tar.ts";

async function entries(tar: Buffer): Promise<Array<{ name: string; type: string; text: string; mode: number; mtime: number; uid: number }>> {
  const out = [];
  for await (const entry of readTar(Readable.from([tar]))) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    out.push({ name: entry.name, type: entry.type, text: Buffer.concat(chunks).toString("utf8"), mode: entry.mode, mtime: entry.mtime, uid: entry.uid });
  }
  return out;
}

/** An engine whose POST /build answers with these JSON lines; the request is kept. */
function fakeEngine(lines: readonly object[]): { engine: EngineClient; requests: RequestSpec[] } {
  const requests: RequestSpec[] = [];
  const engine = {
    stream: async (spec: RequestSpec) => {
      requests.push(spec);
      return Readable.from(lines.map((line) => `${JSON.stringify(line)}\r\n`));
    },
  } as unknown as EngineClient;
  return { engine, requests };
}

describe("contextTar", () => {
  test("holds the files and their folders, root-owned, mtime 0, same bytes each time", async () => {
    const files = [
      { path: "Dockerfile", text: "FROM x\n" },
      { path: "ca/sandbox-1.crt", text: "CERT\n" },
    ];
    const tar = contextTar(files, ["ca"]);
    expect(tar.length % 512).toBe(0);
    expect(contextTar([...files].reverse(), ["ca"]).equals(tar)).toBe(true);
    const got = await entries(tar);
    expect(got.map((e) => [e.name, e.type])).toEqual([
      ["ca", "dir"],
      ["Dockerfile", "file"],
      ["ca/sandbox-1.crt", "file"],
    ]);
    expect(got[1]?.text).toBe("FROM x\n");
    expect(got.every((e) => e.mtime === 0 && e.uid === 0)).toBe(true);
  });

  test("an empty folder is still there (the recipe's COPY ca/ needs it)", async () => {
    const got = await entries(contextTar([{ path: "Dockerfile", text: "FROM x\n" }], ["ca"]));
    expect(got.map((e) => e.name)).toEqual(["ca", "Dockerfile"]);
  });
});

describe("buildImage", () => {
  test("sends the context and the options as the classic builder wants them", async () => {
    const { engine, requests } = fakeEngine([{ stream: "Step 1/1 : FROM x\n" }, { aux: { ID: "sha256:abc" } }, { stream: "Successfully built abc\n" }]);
    const result = await buildImage(engine, { context: Buffer.from("tar"), tag: "sandbox/claude:0123456789ab", labels: { a: "1" }, buildArgs: { BASE: "sha256:b" } });
    expect(result.id).toBe("sha256:abc");
    const spec = requests[0] as RequestSpec;
    expect(spec.method).toBe("POST");
    expect(spec.path).toBe("/build");
    expect(spec.query).toEqual({ t: "sandbox/claude:0123456789ab", labels: { a: "1" }, buildargs: { BASE: "sha256:b" }, pull: false, rm: true, forcerm: true });
    expect(spec.headers).toEqual({ "Content-Type": "application/x-tar" });
    expect(spec.untimed).toBe(true);
  });

  test("the ID from 'Successfully built' when there is no aux line", async () => {
    const { engine } = fakeEngine([{ stream: "Successfully built 0123456789ab\n" }]);
    expect((await buildImage(engine, { context: Buffer.alloc(0) })).id).toBe("0123456789ab");
  });

  test("Docker's error line: the step and the end of its output", async () => {
    const { engine } = fakeEngine([
      { stream: "Step 1/2 : FROM x" },
      { stream: "\n" },
      { stream: " ---> 9faafb497b60\n" },
      { stream: "Step 2/2 : RUN npm install -g pkg" },
      { stream: "\n" },
      { stream: " ---> Running in 1234\n" },
      { stream: "\u001b[91mnpm error code SELF_SIGNED_CERT_IN_CHAIN\n\u001b[0m" },
      { stream: "Removing intermediate container 1234\n" },
      { errorDetail: { code: 1, message: "The command '/bin/sh -c npm install -g pkg' returned a non-zero code: 1" }, error: "The command ..." },
    ]);
    const seen: string[] = [];
    const err = await buildImage(engine, { context: Buffer.alloc(0), onEvent: (e) => seen.push(e.stream ?? "") }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect(err.step).toBe("step 2/2 (RUN npm install -g pkg)");
    expect(err.tail).toEqual(["npm error code SELF_SIGNED_CERT_IN_CHAIN"]);
    expect(err.reason).toContain("returned a non-zero code: 1");
    expect(err.exitCode).toBe(125);
    expect(seen.length).toBe(8);
  });

  test("Podman's error line", async () => {
    const { engine } = fakeEngine([
      { stream: "STEP 1/2: FROM sha256:9fd5\n" },
      { stream: "STEP 2/2: RUN echo hello; exit 3\n" },
      { stream: "hello\n" },
      { errorDetail: { message: 'building at STEP "RUN echo hello; exit 3": while running runtime: exit status 3\n' }, error: "..." },
    ]);
    const err = await buildImage(engine, { context: Buffer.alloc(0) }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect(err.step).toBe("step 2/2 (RUN echo hello; exit 3)");
    expect(err.tail).toEqual(["hello"]);
  });

  test("a build that names no image is an error", async () => {
    const { engine } = fakeEngine([{ stream: "done\n" }]);
    await expect(buildImage(engine, { context: Buffer.alloc(0) })).rejects.toThrow("named no image");
  });

  test("plain text: no colours, no carriage returns", () => {
    expect(plainText("\u001b[91moops\r\n\u001b[0m")).toBe("oops\n");
  });
});
