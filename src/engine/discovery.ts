import { UsageError } from "../core/errors.ts";
import { DEFAULT_UNIX_SOCKET, parseEngineAddress, type EngineAddress } from "./address.ts";
import type { TlsMaterial } from "./client.ts";

/** Which engine to talk to, and how we found it (shown by `sandbox version`). */
export interface EngineChoice {
  address: EngineAddress;
  source: string;
  tls?: TlsMaterial;
}

export interface DiscoveryInput {
  hostFlag: string | undefined;
  env: Record<string, string | undefined>;
  homeDir: string;
  readFile: (path: string) => string | Buffer | undefined;
  exists: (path: string) => boolean;
}

/**
 * The docker CLI's order: --host, DOCKER_HOST, then the default socket.
 * (Contexts and the rootless/Podman sockets are looked up in discoverEngine's
 * later steps.)
 */
export function discoverEngine(input: DiscoveryInput): EngineChoice {
  const tlsVerify = input.env.DOCKER_TLS_VERIFY !== undefined && input.env.DOCKER_TLS_VERIFY !== "" && input.env.DOCKER_TLS_VERIFY !== "0";
  const explicit = input.hostFlag !== undefined ? { raw: input.hostFlag, source: "--host flag" } : input.env.DOCKER_HOST ? { raw: input.env.DOCKER_HOST, source: "DOCKER_HOST" } : undefined;
  if (explicit) {
    const parsed = parseEngineAddress(explicit.raw, { tlsVerify });
    if ("error" in parsed) throw new UsageError(`${explicit.source}: ${parsed.error}`, { hint: "Use unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host." });
    return { address: parsed, source: explicit.source, ...tlsFromEnv(parsed, input, tlsVerify) };
  }
  return { address: { kind: "unix", socketPath: DEFAULT_UNIX_SOCKET, url: `unix://${DEFAULT_UNIX_SOCKET}` }, source: "default socket" };
}

function tlsFromEnv(address: EngineAddress, input: DiscoveryInput, verify: boolean): { tls?: TlsMaterial } {
  if (address.kind !== "tcp" || !address.tls) return {};
  const dir = input.env.DOCKER_CERT_PATH || `${input.homeDir}/.docker`;
  const read = (name: string) => input.readFile(`${dir}/${name}`);
  const tls: TlsMaterial = { verify };
  const ca = read("ca.pem");
  const cert = read("cert.pem");
  const key = read("key.pem");
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  return { tls };
}
