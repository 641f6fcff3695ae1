import { describe, expect, test } from "bun:test";
import { EngineError } from "../../src/core/errors.ts";
import type { EngineClient } from "../../src/engine/client.ts";
import { inspectContainer } from "../../src/engine/containers.ts";

/** A client whose every request fails with `err`. */
const failing = (err: Error) => ({ json: async () => Promise.reject(err) }) as unknown as EngineClient;
const refused = (status: number, text: string) =>
  new EngineError(`the engine refused GET /containers/x/json: ${text}`, { statusCode: status, refusal: { method: "GET", path: "/containers/x/json", status, text, flavor: "podman", address: "unix:///x" } });

describe("inspectContainer", () => {
  test("Podman's 500 for a container it is removing ('does not exist in database: no such container') is a container gone", async () => {
    expect(await inspectContainer(failing(refused(500, "container abc does not exist in database: no such container")), "x")).toBeUndefined();
  });

  test("any other failure is still thrown", async () => {
    await expect(inspectContainer(failing(refused(500, "database is locked")), "x")).rejects.toThrow("database is locked");
    await expect(inspectContainer(failing(refused(409, "no such container")), "x")).rejects.toThrow("no such container");
    await expect(inspectContainer(failing(new Error("connect ECONNREFUSED")), "x")).rejects.toThrow("ECONNREFUSED");
  });
});
