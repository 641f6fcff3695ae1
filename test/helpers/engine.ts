/**
 * Direct engine access for assertions and cleanup, through the project's own
 * engine client (no docker CLI), so the same checks work on Podman.
 */
import { EngineClient } from "../../src/engine/client.ts";
import { negotiate } from "../../src/engine/negotiate.ts";
import { listContainers, removeContainer, type ContainerSummary } from "../../src/engine/containers.ts";
import { MANAGED_FILTER } from "../../src/core/labels.ts";
import { podmanUlimits } from "../../src/core/engine-dialect.ts";
import type { HostConfig } from "../../src/core/engine-api.ts";
import { NOFILE_LIMIT } from "../../src/core/plan.ts";
import { ENGINE_SOCKET, IS_PODMAN } from "./sandbox.ts";

let client: EngineClient | undefined;

export async function testEngine(): Promise<EngineClient> {
  if (!client) {
    client = new EngineClient({ address: { kind: "unix", socketPath: ENGINE_SOCKET, url: `unix://${ENGINE_SOCKET}` } });
    await negotiate(client);
  }
  return client;
}

/** Our containers (managed label), optionally narrowed by an extra label filter. */
export async function managedContainers(extraLabel?: string): Promise<ContainerSummary[]> {
  const engine = await testEngine();
  return listContainers(engine, { all: true, labels: extraLabel ? [MANAGED_FILTER, extraLabel] : [MANAGED_FILTER] });
}

/** Remove every container carrying `label` (tests tag theirs with a unique workspace or name). */
export async function removeByName(prefix: string): Promise<void> {
  const engine = await testEngine();
  const all = await listContainers(engine, { all: true });
  for (const c of all) {
    if (c.Names.some((n) => n.replace(/^\//, "").startsWith(prefix))) await removeContainer(engine, c.Id, { force: true });
  }
}

/**
 * HostConfig for a container a test makes straight through the API (one of
 * "another tool"): on Podman with the limits sandbox names for its own
 * (core/engine-dialect.ts podmanUlimits). Without them a default Podman
 * service whose root lacks CAP_SYS_RESOURCE, as on the test machines, asks
 * runc for nproc and nofile limits it cannot grant, and the container does
 * not start.
 */
export function apiHostConfig(hostConfig: Partial<HostConfig> = {}): Partial<HostConfig> {
  if (!IS_PODMAN) return hostConfig;
  return { ...hostConfig, Ulimits: podmanUlimits([{ Name: "nofile", Soft: NOFILE_LIMIT, Hard: NOFILE_LIMIT }], 0) };
}
