import { describe, expect, test } from "bun:test";
import { parseIp } from "../../src/egress/address-policy.ts";
import {
  explicitAddressRule,
  matchDestination,
  mergeEgressEntries,
  normalizeHostName,
  parseAllowEntry,
  parseAllowList,
  splitEgressList,
  splitHostPort,
} from "../../src/egress/allowlist.ts";

function list(entries: string[]) {
  const parsed = parseAllowList(entries);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

describe("entries", () => {
  test("hosts, ports, wildcards, addresses and ranges", () => {
    expect(parseAllowEntry("API.Example.com.")).toEqual({ ok: true, value: { kind: "host", host: "api.example.com", port: undefined, text: "API.Example.com." } });
    expect(parseAllowEntry("api.example.com:443")).toMatchObject({ ok: true, value: { kind: "host", port: 443 } });
    expect(parseAllowEntry("*.github.com")).toMatchObject({ ok: true, value: { kind: "suffix", suffix: "github.com" } });
    expect(parseAllowEntry("203.0.113.7")).toMatchObject({ ok: true, value: { kind: "cidr", cidr: { prefix: 32 } } });
    expect(parseAllowEntry("10.0.0.0/8:5432")).toMatchObject({ ok: true, value: { kind: "cidr", port: 5432, cidr: { prefix: 8 } } });
    expect(parseAllowEntry("[2001:db8::1]:443")).toMatchObject({ ok: true, value: { kind: "cidr", port: 443, cidr: { prefix: 128 } } });
    expect(parseAllowEntry("fd00::/8")).toMatchObject({ ok: true, value: { kind: "cidr", cidr: { prefix: 8 } } });
    expect(parseAllowEntry("[fd00::/8]:80")).toMatchObject({ ok: true, value: { kind: "cidr", port: 80 } });
  });

  test.each([
    ["*", "every host"],
    ["*:443", "every host"],
    ["*.com", "too broad"],
    ["api*.example.com", "only use *"],
    ["a.*.example.com", "only use *"],
    ["example.com:0", "port"],
    ["example.com:70000", "port"],
    ["example.com:https", "port"],
    ["exa mple.com", "not a host name"],
    ["-bad.example.com", "not a host name"],
    ["10.0.0.0/40", "CIDR"],
    ["0x7f.1", "not a host name"],
    ["", "empty"],
  ])("%p is refused (%s)", (entry, why) => {
    const parsed = parseAllowEntry(entry);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(why);
  });

  test("comma lists ignore blanks; duplicates collapse", () => {
    expect(splitEgressList(" a.test, ,b.test:443,")).toEqual(["a.test", "b.test:443"]);
    expect(list(["a.test", "A.TEST", "a.test:443"]).rules.length).toBe(2);
  });

  test("host:port splitting", () => {
    expect(splitHostPort("[::1]:80")).toEqual({ host: "::1", port: "80" });
    expect(splitHostPort("::1")).toEqual({ host: "::1", port: undefined });
    expect(splitHostPort("a.test:1")).toEqual({ host: "a.test", port: "1" });
    expect(splitHostPort("[::1")).toBeUndefined();
  });

  test("names: numeric last labels are addresses in disguise, not names", () => {
    expect(normalizeHostName("2130706433")).toBeUndefined();
    expect(normalizeHostName("127.1")).toBeUndefined();
    expect(normalizeHostName("a.0x7f")).toBeUndefined();
    expect(normalizeHostName("1password.com")).toBe("1password.com");
    expect(normalizeHostName("xn--bcher-kva.example")).toBe("xn--bcher-kva.example");
  });
});

describe("matching", () => {
  const l = list(["api.example.com:443", "*.github.com", "registry.npmjs.org", "10.1.0.0/16", "[2001:db8::1]:443"]);

  test("exact names, with and without a port", () => {
    expect(matchDestination(l, "api.example.com", 443)?.text).toBe("api.example.com:443");
    expect(matchDestination(l, "API.EXAMPLE.COM.", 443)?.text).toBe("api.example.com:443");
    expect(matchDestination(l, "api.example.com", 80)).toBeUndefined();
    expect(matchDestination(l, "registry.npmjs.org", 8443)?.text).toBe("registry.npmjs.org");
  });

  test("wildcards match names below the domain only", () => {
    expect(matchDestination(l, "codeload.github.com", 443)?.text).toBe("*.github.com");
    expect(matchDestination(l, "a.b.github.com", 443)?.text).toBe("*.github.com");
    expect(matchDestination(l, "github.com", 443)).toBeUndefined();
    expect(matchDestination(l, "evilgithub.com", 443)).toBeUndefined();
    expect(matchDestination(l, "github.com.evil.test", 443)).toBeUndefined();
  });

  test("IP literals match only address rules, never names", () => {
    expect(matchDestination(l, "10.1.2.3", 22)?.text).toBe("10.1.0.0/16");
    expect(matchDestination(l, "10.2.0.1", 22)).toBeUndefined();
    expect(matchDestination(l, "2001:db8::1", 443)?.text).toBe("[2001:db8::1]:443");
    expect(matchDestination(l, "2001:db8::1", 80)).toBeUndefined();
    expect(matchDestination(list(["localhost"]), "127.0.0.1", 80)).toBeUndefined();
  });

  test("explicit address rules, for resolved private addresses", () => {
    expect(explicitAddressRule(l, parseIp("10.1.9.9") as Uint8Array, 80)?.text).toBe("10.1.0.0/16");
    expect(explicitAddressRule(l, parseIp("::ffff:10.1.9.9") as Uint8Array, 80)?.text).toBe("10.1.0.0/16");
    expect(explicitAddressRule(l, parseIp("10.9.9.9") as Uint8Array, 80)).toBeUndefined();
  });

  test("agent defaults follow the user's entries without duplicates", () => {
    expect(mergeEgressEntries(["a.test", "api.anthropic.com:443"], ["api.anthropic.com:443"])).toEqual(["a.test", "api.anthropic.com:443"]);
    expect(mergeEgressEntries(["a.test"], ["api.openai.com:443"])).toEqual(["a.test", "api.openai.com:443"]);
  });
});
