import { readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { SandboxError } from "../core/errors.ts";
import { EXIT } from "../core/exit-codes.ts";
import type { EgressPlan } from "../core/plan.ts";
import type { EngineAddress } from "../engine/address.ts";
import type { EngineClient } from "../engine/client.ts";
import { createNetwork, disconnectNetwork, inspectNetwork, networkGateway, networkSubnet, removeNetwork } from "../engine/networks.ts";
import { parseCidr, parseIp } from "./address-policy.ts";
import { parseAllowList } from "./allowlist.ts";
import { AuditLog, openAuditFile, type AuditSink } from "./audit.ts";
import type { ActiveCredential } from "./credential-source.ts";
import { CredentialInterceptor } from "./intercept.ts";
import { EgressProxy } from "./proxy.ts";
import type { RunCa } from "./run-ca.ts";
import { upstreamOverrideMap } from "./upstream-override.ts";
import type { UpstreamProxies } from "./upstream-proxy.ts";
import { parseHostsTable, systemResolver, tableResolver, type Resolver } from "./resolve.ts";
import { applyHostFirewall, type HostFirewallRule, type RestoreRunner } from "./host-firewall.ts";

/**
 * One run's egress set-up, in order: the per-run `internal` network (no
 * route out) and the proxy listening on that network's gateway address (the
 * bridge's address on this host). The container body points at the proxy
 * (core/container-body.ts) once its address is known.
 * `close()` undoes it all: proxy stopped, audit file closed, network removed.
 */

/** The proxy's preferred port, so a host firewall rule can name it; any free port when taken. */
export const PREFERRED_PROXY_PORT = 3128;

/** What the engine told about itself that matters to the proxy: its dialect (the ping's Server header) and /info's SecurityOptions. */
export interface EngineTraits {
  flavor?: "docker" | "podman" | undefined;
  /** /info's SecurityOptions name `rootless`. */
  rootless?: boolean | undefined;
}

/**
 * Why the egress proxy cannot be enforced with this engine, or undefined when
 * it can. The proxy listens on the network's gateway, which is only an
 * address of this machine when the engine runs here, on Linux, without a VM
 * or a network namespace of its own between, and when the bridge exists as
 * soon as the network does (not Podman's).
 */
export function egressEngineProblem(address: EngineAddress, platform: string, engineOs: string | undefined, traits: EngineTraits = {}): string | undefined {
  if (address.kind !== "unix") return `the engine at ${address.url} is not on this machine`;
  if (platform !== "linux") return `sandbox runs on ${platform}, where the engine's networks live in a VM, not on this machine`;
  if (engineOs !== undefined && engineOs !== "linux") return `the engine runs ${engineOs} containers`;
  if (traits.flavor === "podman") return "the engine is Podman, which creates a network's bridge only when a container starts, too late for the proxy";
  if (traits.rootless) return "the engine is rootless: its networks live in a network namespace of its own, out of the proxy's reach";
  return undefined;
}

/** The flag a message names for the run's egress mode. */
export function egressFlag(mode: EgressPlan["mode"]): string {
  return mode === "public" ? "--network public" : "--egress";
}

/** The refusal of a run whose egress mode was chosen on purpose, where the proxy cannot run (exit 125, before anything is made). */
export function egressRefusal(problem: string, mode: EgressPlan["mode"]): SandboxError {
  return new SandboxError(`${egressFlag(mode)} cannot be enforced here: ${problem}`, {
    exitCode: EXIT.SANDBOX_FAILED,
    hint: "The egress proxy must share a network with the container; it needs a local rootful Docker engine on Linux. Use --network none, or --network bridge (the local network and this host reachable, no keys added), or run where the engine is local.",
  });
}

export interface EgressDeps {
  /** Reads the hosts file named by SANDBOX_EGRESS_HOSTS (plan.hostsFile). */
  readFile?: (path: string) => string;
  /** This machine's addresses; defaults to every interface's. */
  localAddresses?: readonly Uint8Array[];
  /** Replaces DNS (tests). */
  resolve?: Resolver;
  /** Applies the host firewall rules (host-firewall.ts); tests replace it. */
  firewall?: RestoreRunner;
  /** The host's proxy for the egress proxy's own connections (upstream-proxy.ts); absent: direct. */
  upstreamProxy?: UpstreamProxies;
}

export interface OpenEgress {
  networkId: string;
  gateway: string;
  proxy: { host: string; port: number };
  audit: AuditLog;
  /**
   * Why host services stay reachable from the run (the firewall rules that
   * keep only the proxy's port open could not be added), or undefined when
   * they were (host-firewall.ts).
   */
  hostReachable: string | undefined;
  /** The host firewall rules added for the run (host-firewall.ts), for the watchdog to remove if sandbox dies. */
  firewall: HostFirewallRule | undefined;
  /** Stop the proxy, close the audit, remove the network. Returns the denial summary lines. Never throws. */
  close(container?: string): Promise<{ summary: string[]; problems: string[] }>;
}

export function hostAddresses(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      const bytes = parseIp(info.address.replace(/%.*$/, ""));
      if (bytes) out.push(bytes);
    }
  }
  return out;
}

/** What the proxy needs to add credentials to requests (intercept.ts); absent: every tunnel is relayed as it is. */
export interface EgressCredentials {
  ca: RunCa;
  /** The rules in use with their values. */
  used: readonly ActiveCredential[];
  /** Certificates (PEM) trusted for destination servers besides this machine's: the run's --ca-cert files. */
  upstreamCa: readonly string[];
}

export async function openEgress(engine: EngineClient, plan: EgressPlan, deps: EgressDeps = {}, credentials?: EgressCredentials): Promise<OpenEgress> {
  const allow = parseAllowList(plan.allow);
  if (!allow.ok) throw new SandboxError(`egress allow-list: ${allow.error}`);
  const resolve = deps.resolve ?? (plan.hostsFile ? hostsFileResolver(plan.hostsFile, deps.readFile) : systemResolver);

  let sink: AuditSink | undefined;
  if (plan.audit) {
    try {
      sink = openAuditFile(plan.audit);
    } catch (err) {
      if (err instanceof SandboxError) throw err;
      throw new SandboxError(`cannot write the audit file ${plan.audit}: ${(err as Error).message}`, {
        hint: "Pass a writable path to --audit.",
      });
    }
  }
  const audit = new AuditLog(sink);
  let proxy: EgressProxy | undefined;
  let networkId: string | undefined;
  try {
    networkId = await createNetwork(engine, {
      name: plan.network,
      internal: true,
      labels: plan.labels,
      // A known interface name lets a host firewall single out sandbox networks (docs/egress.md).
      options: { "com.docker.network.bridge.name": plan.bridge },
    });
    const details = await inspectNetwork(engine, networkId);
    const gateway = details ? networkGateway(details) : undefined;
    const subnet = details ? networkSubnet(details) : undefined;
    const clients = subnet ? parseCidr(subnet) : undefined;
    if (!gateway || !clients) throw new SandboxError(`the engine gave network ${plan.network} no IPv4 gateway and subnet, so the egress proxy has nowhere to listen`);
    const intercept =
      credentials && credentials.used.length > 0
        ? new CredentialInterceptor({
            ca: credentials.ca,
            credentials: credentials.used,
            upstreamCa: credentials.upstreamCa,
            // Names only: host, method, path, rule; never the value.
            onInjection: (event) => audit.recordCredential(event),
          })
        : undefined;
    proxy = new EgressProxy({
      allow: allow.value,
      audit,
      resolve,
      clients,
      localAddresses: deps.localAddresses ?? hostAddresses(),
      ...(intercept ? { intercept } : {}),
      ...(deps.upstreamProxy ? { upstreamProxy: deps.upstreamProxy } : {}),
      ...(plan.upstreams && plan.upstreams.length > 0 ? { upstreamOverrides: upstreamOverrideMap(plan.upstreams) } : {}),
    });
    const bound = await listenOnGateway(proxy, gateway);
    const rule: HostFirewallRule = { bridge: plan.bridge, gateway, port: bound.port, network: plan.network };
    const fenced = await applyHostFirewall(rule, "add", deps.firewall);
    const running = proxy;
    const id = networkId;
    return {
      networkId: id,
      gateway,
      proxy: bound,
      audit,
      hostReachable: fenced.ok ? undefined : fenced.why,
      firewall: fenced.ok ? rule : undefined,
      close: async (container) => {
        const closed = await closeEgress(engine, running, audit, id, plan, container);
        if (fenced.ok) {
          const removed = await applyHostFirewall(rule, "remove", deps.firewall);
          if (!removed.ok) closed.problems.push(`could not remove the run's host firewall rules (${removed.why}); they name a bridge that is gone, so they hold nothing back: list them with 'iptables -S INPUT | grep "sandbox egress"' and delete them with iptables -D`);
        }
        return closed;
      },
    };
  } catch (err) {
    await proxy?.close().catch(() => {});
    audit.close();
    if (networkId) await removeNetwork(engine, networkId).catch(() => {});
    throw err;
  }
}

async function listenOnGateway(proxy: EgressProxy, gateway: string): Promise<{ host: string; port: number }> {
  try {
    return await proxy.listen(gateway, PREFERRED_PROXY_PORT);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES") return await proxy.listen(gateway, 0).catch((e) => Promise.reject(listenError(e, gateway)));
    throw listenError(err, gateway);
  }
}

function listenError(err: unknown, gateway: string): SandboxError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRNOTAVAIL") {
    return new SandboxError(`--egress cannot be enforced here: the network's gateway ${gateway} is not an address of this machine`, {
      exitCode: EXIT.SANDBOX_FAILED,
      hint: "The engine keeps its networks out of sandbox's reach (a VM, a rootless network namespace, or Podman, which creates the bridge only when a container starts). Use a local Docker engine, or --network none.",
      cause: err,
    });
  }
  return new SandboxError(`the egress proxy cannot listen on ${gateway}: ${(err as Error).message}`, { cause: err });
}

function hostsFileResolver(path: string, readFile: (path: string) => string = (p) => readFileSync(p, "utf8")): Resolver {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new SandboxError(`cannot read SANDBOX_EGRESS_HOSTS file ${path}: ${(err as Error).message}`, {
      hint: "Unset SANDBOX_EGRESS_HOSTS to resolve names with DNS, or point it at a hosts-format file.",
    });
  }
  return tableResolver(parseHostsTable(text));
}

async function closeEgress(
  engine: EngineClient,
  proxy: EgressProxy,
  audit: AuditLog,
  networkId: string,
  plan: EgressPlan,
  container: string | undefined,
): Promise<{ summary: string[]; problems: string[] }> {
  const problems: string[] = [];
  await proxy.close().catch((err) => problems.push(`stopping the egress proxy: ${(err as Error).message}`));
  try {
    audit.close();
  } catch (err) {
    problems.push(`closing the audit file: ${(err as Error).message}`);
  }
  let removed = false;
  for (let attempt = 0; attempt < 5 && !removed; attempt++) {
    try {
      const result = await removeNetwork(engine, networkId);
      if (result !== "in-use") removed = true;
      // A kept container still holds the network: detach it (it keeps no way out either way).
      else if (container) await disconnectNetwork(engine, networkId, container).catch(() => {});
    } catch {
      // Retry below: the engine may still be tearing the container's endpoint down.
    }
    if (!removed) await delay(200 * (attempt + 1));
  }
  if (!removed) problems.push(`could not remove network ${plan.network}; remove it with 'docker network rm ${plan.network}'`);
  return { summary: audit.summary(plan.audit), problems };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
