import { EngineError } from "../core/errors.ts";
import type { EngineClient } from "./client.ts";

/** The subset of GET /networks/{id} that sandbox reads. */
export interface NetworkDetails {
  Id: string;
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> | null } | null;
  Containers?: Record<string, unknown> | null;
}

export interface NetworkSpec {
  name: string;
  /** No route out: containers reach only each other and the gateway (this host). */
  internal: boolean;
  labels: Record<string, string>;
  /** Driver options, e.g. com.docker.network.bridge.name. */
  options?: Record<string, string>;
}

export async function createNetwork(engine: EngineClient, spec: NetworkSpec): Promise<string> {
  const reply = await engine.json<{ Id?: string; id?: string }>({
    method: "POST",
    path: "/networks/create",
    body: {
      Name: spec.name,
      CheckDuplicate: true,
      Driver: "bridge",
      Internal: spec.internal,
      EnableIPv6: false,
      Attachable: false,
      Labels: spec.labels,
      Options: spec.options ?? {},
    },
    ok: [200, 201],
  });
  const id = reply.body?.Id ?? reply.body?.id;
  if (!id) throw new EngineError(`the engine created network ${spec.name} but did not say its id`);
  return id;
}

export async function inspectNetwork(engine: EngineClient, idOrName: string): Promise<NetworkDetails | undefined> {
  const reply = await engine.json<NetworkDetails>({ method: "GET", path: `/networks/${encodeURIComponent(idOrName)}`, ok: [200], expected: [404] });
  return reply.status === 404 ? undefined : reply.body;
}

/** "gone" if it already was; "in-use" while a container is still attached. */
export async function removeNetwork(engine: EngineClient, idOrName: string): Promise<"removed" | "gone" | "in-use"> {
  const reply = await engine.json({ method: "DELETE", path: `/networks/${encodeURIComponent(idOrName)}`, ok: [200, 204], expected: [403, 404, 409] });
  return reply.status === 404 ? "gone" : reply.status === 403 || reply.status === 409 ? "in-use" : "removed";
}

/** Detach a (stopped or running) container so its network can go. */
export async function disconnectNetwork(engine: EngineClient, network: string, container: string): Promise<void> {
  await engine.json({
    method: "POST",
    path: `/networks/${encodeURIComponent(network)}/disconnect`,
    body: { Container: container, Force: true },
    ok: [200, 204],
    expected: [404],
  });
}

export async function listNetworks(engine: EngineClient, opts: { labels?: string[] } = {}): Promise<NetworkDetails[]> {
  const filters = opts.labels && opts.labels.length > 0 ? { label: opts.labels } : undefined;
  const reply = await engine.json<NetworkDetails[]>({ method: "GET", path: "/networks", query: { filters } });
  if (!Array.isArray(reply.body)) throw new EngineError("the engine answered GET /networks with something that is not a list");
  return reply.body;
}

/** The first IPv4 gateway in the network's IPAM config (the bridge's address on the host). */
export function networkGateway(details: NetworkDetails): string | undefined {
  for (const config of details.IPAM?.Config ?? []) {
    const gw = config.Gateway?.replace(/\/\d+$/, "");
    if (gw && /^\d+\.\d+\.\d+\.\d+$/.test(gw)) return gw;
  }
  return undefined;
}

/** The IPv4 subnet (CIDR text) that goes with `networkGateway`. */
export function networkSubnet(details: NetworkDetails): string | undefined {
  for (const config of details.IPAM?.Config ?? []) {
    if (config.Subnet && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(config.Subnet)) return config.Subnet;
  }
  return undefined;
}
