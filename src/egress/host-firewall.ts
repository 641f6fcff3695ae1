import { execFile } from "node:child_process";

/**
 * The host is not a destination (docs/egress.md, "The host"). An egress
 * run's network is `internal`, so nothing leaves it, but its gateway is an
 * address of this machine: every host service listening on all addresses
 * answers the container there (and on docker0's address, and on any other
 * of the host's addresses), proxy or not. Only the proxy's port on the
 * gateway may answer; the kernel's INPUT chain is where that is said, for
 * packets arriving from the run's bridge. Adding rules needs CAP_NET_ADMIN
 * (sandbox run as root); otherwise the run goes on and says the host is
 * reachable (a host-wide rule in the docs closes it once for every run).
 *
 * One `iptables-restore --noflush` applies both rules at once (no window
 * with the DROP but not the ACCEPT, one process), and the same with `-D`
 * removes them. Each carries a comment naming the run's network, so rules a
 * killed run left behind can be found.
 */

export interface HostFirewallRule {
  bridge: string;
  gateway: string;
  port: number;
  /** The run's network name: the rules' comment. */
  network: string;
}

export const FIREWALL_COMMENT_PREFIX = "sandbox egress ";

/** The iptables-restore input that adds (`-I`) or removes (`-D`) the run's rules. */
export function firewallScript(rule: HostFirewallRule, action: "add" | "remove"): string {
  const comment = `-m comment --comment "${FIREWALL_COMMENT_PREFIX}${rule.network}"`;
  const accept = `INPUT -i ${rule.bridge} -p tcp -d ${rule.gateway} --dport ${rule.port} ${comment} -j ACCEPT`;
  const drop = `INPUT -i ${rule.bridge} ${comment} -j DROP`;
  // Added: ACCEPT first, DROP right below it, both above every other rule.
  const lines = action === "add" ? [`-I ${accept.replace("INPUT", "INPUT 1")}`, `-I ${drop.replace("INPUT", "INPUT 2")}`] : [`-D ${accept}`, `-D ${drop}`];
  return ["*filter", ...lines, "COMMIT", ""].join("\n");
}

/** Names and values that reach the rule text must be plain (they come from sandbox's own plan). */
export function firewallRuleProblem(rule: HostFirewallRule): string | undefined {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(rule.bridge)) return `bridge name ${JSON.stringify(rule.bridge)}`;
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(rule.gateway)) return `gateway ${JSON.stringify(rule.gateway)}`;
  if (!Number.isInteger(rule.port) || rule.port < 1 || rule.port > 65535) return `port ${rule.port}`;
  if (!/^[A-Za-z0-9_.-]+$/.test(rule.network)) return `network name ${JSON.stringify(rule.network)}`;
  return undefined;
}

export type FirewallResult = { ok: true } | { ok: false; why: string };

export type RestoreRunner = (script: string) => Promise<void>;

/** Runs `iptables-restore -w --noflush` with the script on its input. */
export const iptablesRestore: RestoreRunner = (script) =>
  new Promise((resolve, reject) => {
    const child = execFile("iptables-restore", ["-w", "--noflush"], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(Object.assign(new Error((stderr || err.message).trim().split("\n")[0] ?? err.message), { code: (err as NodeJS.ErrnoException).code }));
      else resolve();
    });
    child.stdin?.end(script);
  });

export async function applyHostFirewall(rule: HostFirewallRule, action: "add" | "remove", run: RestoreRunner = iptablesRestore): Promise<FirewallResult> {
  const problem = firewallRuleProblem(rule);
  if (problem) return { ok: false, why: `unexpected ${problem}` };
  try {
    await run(firewallScript(rule, action));
    return { ok: true };
  } catch (err) {
    const message = (err as NodeJS.ErrnoException).code === "ENOENT" ? "iptables-restore is not installed" : (err as Error).message;
    return { ok: false, why: message };
  }
}

/** A host-wide rule for every sandbox bridge (docs/egress.md) keeps the host out of reach without per-run rules. */
export function hasHostWideRule(inputRules: string): boolean {
  return /-A INPUT -i sbx-\+ (.* )?-j DROP/.test(inputRules);
}

/**
 * Whether egress runs keep the host's services out of reach here, for
 * `sandbox doctor`: sandbox may add its per-run rules (it can read the INPUT
 * chain, so it has CAP_NET_ADMIN), or a host-wide rule is in place.
 */
export function hostFirewallStatus(): Promise<{ ok: true; how: string } | { ok: false; why: string }> {
  return new Promise((resolve) => {
    execFile("iptables", ["-w", "-S", "INPUT"], { timeout: 5_000 }, (err, stdout, stderr) => {
      if (!err) {
        resolve({ ok: true, how: hasHostWideRule(stdout) ? "a host-wide rule drops what sbx-* bridges send to the host" : "sandbox adds per-run rules: only the proxy's port answers on the host" });
        return;
      }
      const code = (err as NodeJS.ErrnoException).code;
      resolve({ ok: false, why: code === "ENOENT" ? "iptables is not installed" : (stderr || err.message).trim().split("\n")[0] ?? "iptables failed" });
    });
  });
}
