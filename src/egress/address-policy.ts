/**
 * Which IP addresses the egress proxy may connect to. Pure: strings and bytes
 * in, verdicts out.
 *
 * A name on the allow-list says nothing about where it points: its DNS may
 * answer 127.0.0.1, 169.254.169.254 or the router's address (DNS rebinding).
 * So every address the proxy is about to dial is checked here, and anything
 * that is not globally routable unicast is refused unless the user listed it
 * (or a CIDR containing it) on the allow-list. "Globally routable" follows
 * IANA's special-purpose registries: private, loopback and link-local, but
 * also shared (CGNAT), documentation, benchmarking, multicast and reserved
 * space, since none of those is "the internet" and several are used inside
 * local networks in practice. IPv6 forms that carry an IPv4 address
 * (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by that address, so
 * `::ffff:127.0.0.1` is as loopback as `127.0.0.1`.
 */

export type AddressKind =
  | "global"
  | "unspecified"
  | "loopback"
  | "private"
  | "link-local"
  | "shared"
  | "documentation"
  | "benchmarking"
  | "multicast"
  | "reserved";

export interface Cidr {
  /** 4 or 16 bytes, with the host bits cleared. */
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Strict dotted quad: four decimal parts 0–255 without leading zeros (no octal/hex surprises). */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? "";
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** RFC 4291 text forms, including `::` and a dotted IPv4 tail. Zone ids (`%eth0`) are refused. */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const words = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const groups = half.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] ?? "";
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = words(halves[0] ?? "");
  const tail = halves.length === 2 ? words(halves[1] ?? "") : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** An IPv4 or IPv6 literal, IPv6 optionally in brackets. */
export function parseIp(text: string): Uint8Array | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  return bare.includes(":") ? parseIPv6(bare) : parseIPv4(bare);
}

export function isIpLiteral(text: string): boolean {
  return parseIp(text) !== undefined;
}

export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // Compress the longest run of zero words (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(":");
  return `${words.slice(0, best).join(":")}::${words.slice(best + bestLen).join(":")}`;
}

/** `10.0.0.0/8`, `fd00::/8`, or a single address (a /32 or /128). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addrText);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  return { bytes: maskTo(bytes, prefix), prefix };
}

function maskTo(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let bit = prefix; bit < out.length * 8; bit++) out[bit >> 3] = (out[bit >> 3] ?? 0) & ~(0x80 >> (bit & 7));
  return out;
}

function inPrefix(bytes: Uint8Array, net: Uint8Array, prefix: number): boolean {
  if (bytes.length !== net.length) return false;
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if (((bytes[bit >> 3] ?? 0) & mask) !== ((net[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

/** IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as its IPv4 address; anything else unchanged. */
export function unmapIPv4(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16 && inPrefix(bytes, V6_MAPPED, 96)) return bytes.slice(12);
  return bytes;
}

/** Does the CIDR contain the address? An IPv4 CIDR also contains the IPv4-mapped forms of its addresses. */
export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  const a = cidr.bytes.length === 4 ? unmapIPv4(address) : address;
  return inPrefix(a, cidr.bytes, cidr.prefix);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.bytes)}/${cidr.prefix}`;
}

type Range = readonly [net: string, prefix: number, kind: Exclude<AddressKind, "global">];

const V4_RANGES: readonly Range[] = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "reserved"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

const V6_RANGES: readonly Range[] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["64:ff9b:1::", 48, "private"],
  ["100::", 64, "reserved"],
  ["2001::", 23, "reserved"],
  ["2001:db8::", 32, "documentation"],
  ["3fff::", 20, "documentation"],
  ["5f00::", 16, "reserved"],
  ["fc00::", 7, "private"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "private"],
  ["ff00::", 8, "multicast"],
];

const compile = (ranges: readonly Range[]) =>
  ranges.map(([net, prefix, kind]) => ({ bytes: parseIp(net) as Uint8Array, prefix, kind }));
const V4 = compile(V4_RANGES);
const V6 = compile(V6_RANGES);
const V6_MAPPED = parseIPv6("::ffff:0:0") as Uint8Array;
const V6_COMPAT = parseIPv6("::") as Uint8Array;
const V6_NAT64 = parseIPv6("64:ff9b::") as Uint8Array;
const V6_6TO4 = parseIPv6("2002::") as Uint8Array;
const V6_GLOBAL = parseIPv6("2000::") as Uint8Array;

/** The address an IPv6 form carries inside it, when it carries one. */
function embeddedIPv4(bytes: Uint8Array): Uint8Array | undefined {
  if (inPrefix(bytes, V6_MAPPED, 96) || inPrefix(bytes, V6_NAT64, 96)) return bytes.slice(12);
  // ::a.b.c.d (deprecated "compatible" form); :: and ::1 are matched before this.
  if (inPrefix(bytes, V6_COMPAT, 96)) return bytes.slice(12);
  if (inPrefix(bytes, V6_6TO4, 16)) return bytes.slice(2, 6);
  return undefined;
}

export function classifyAddress(bytes: Uint8Array): AddressKind {
  if (bytes.length === 4) return V4.find((r) => inPrefix(bytes, r.bytes, r.prefix))?.kind ?? "global";
  const special = V6.find((r) => inPrefix(bytes, r.bytes, r.prefix));
  if (special) return special.kind;
  const v4 = embeddedIPv4(bytes);
  if (v4) return classifyAddress(v4);
  // Only 2000::/3 is allocated as global unicast; the rest is reserved by IANA.
  return inPrefix(bytes, V6_GLOBAL, 3) ? "global" : "reserved";
}

const KIND_WORDS: Record<Exclude<AddressKind, "global">, string> = {
  unspecified: "an unspecified (this-host) address",
  loopback: "a loopback address",
  private: "a private-network address",
  "link-local": "a link-local address",
  shared: "a shared (carrier-grade NAT) address",
  documentation: "a documentation-only address",
  benchmarking: "a benchmarking-network address",
  multicast: "a multicast address",
  reserved: "a reserved address",
};

/**
 * Why the proxy must not dial this address, or undefined when it may.
 * `extraLocal` names this machine's own addresses (any of them, public ones
 * included): a public name pointed at the host must not reach its services.
 */
export function forbiddenReason(bytes: Uint8Array, extraLocal: readonly Uint8Array[] = []): string | undefined {
  const plain = unmapIPv4(bytes);
  const kind = classifyAddress(plain);
  if (kind !== "global") return `${formatIp(plain)} is ${KIND_WORDS[kind]}`;
  if (extraLocal.some((local) => sameAddress(unmapIPv4(local), plain))) return `${formatIp(plain)} is an address of this machine`;
  return undefined;
}

export function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
