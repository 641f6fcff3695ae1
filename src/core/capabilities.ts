/**
 * Capabilities that effectively break the sandbox when added back. Adding
 * them is allowed (sometimes needed) but always warned about.
 */
export const DANGEROUS_CAPS: ReadonlySet<string> = new Set([
  "SYS_ADMIN",
  "NET_ADMIN",
  "SYS_PTRACE",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_BOOT",
  "SYS_TIME",
  "DAC_READ_SEARCH",
  "DAC_OVERRIDE",
  "NET_RAW",
  "MKNOD",
  "SETUID",
  "SETGID",
  "SETFCAP",
  "BPF",
  "PERFMON",
  "SYSLOG",
  "MAC_ADMIN",
  "MAC_OVERRIDE",
  "LINUX_IMMUTABLE",
  "ALL",
]);

/** `cap_net_raw`, `CAP_NET_RAW` and `NET_RAW` all name the same capability. */
export function normalizeCap(name: string): string | undefined {
  const upper = name.trim().toUpperCase().replace(/^CAP_/, "");
  return /^[A-Z_]+$/.test(upper) ? upper : undefined;
}
