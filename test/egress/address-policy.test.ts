import { describe, expect, test } from "bun:test";
import { cidrContains, classifyAddress, forbiddenReason, formatIp, parseCidr, parseIp, parseIPv4, parseIPv6 } from "../../src/egress/address-policy.ts";

const ip = (text: string) => {
  const b = parseIp(text);
  if (!b) throw new Error(`not an IP: ${text}`);
  return b;
};

describe("parsing", () => {
  test("IPv4 is strict dotted decimal", () => {
    expect([...(parseIPv4("192.168.1.20") ?? [])]).toEqual([192, 168, 1, 20]);
    for (const bad of ["010.0.0.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "0x7f.0.0.1", "1.2.3.-4", " 1.2.3.4", "1..2.3"]) {
      expect(parseIPv4(bad)).toBeUndefined();
    }
  });

  test("IPv6 text forms", () => {
    expect(formatIp(ip("::1"))).toBe("::1");
    expect(formatIp(ip("2001:DB8:0:0:0:0:0:1"))).toBe("2001:db8::1");
    expect(formatIp(ip("::ffff:127.0.0.1"))).toBe("::ffff:7f00:1");
    expect(formatIp(ip("[fe80::1]"))).toBe("fe80::1");
    expect(formatIp(ip("1:2:3:4:5:6:7:8"))).toBe("1:2:3:4:5:6:7:8");
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", ":::", "1:2:3:4:5:6:7::8:9", "::g"]) {
      expect(parseIPv6(bad)).toBeUndefined();
    }
  });

  test("CIDRs clear host bits and contain IPv4-mapped forms of their addresses", () => {
    const c = parseCidr("10.1.2.3/8");
    expect(c && formatIp(c.bytes)).toBe("10.0.0.0");
    expect(c && cidrContains(c, ip("10.200.0.1"))).toBe(true);
    expect(c && cidrContains(c, ip("::ffff:10.200.0.1"))).toBe(true);
    expect(c && cidrContains(c, ip("11.0.0.1"))).toBe(false);
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    expect(parseCidr("fd00::/129")).toBeUndefined();
    const single = parseCidr("192.168.1.5");
    expect(single?.prefix).toBe(32);
    const v6 = parseCidr("fd00::/8");
    expect(v6 && cidrContains(v6, ip("fdab::1"))).toBe(true);
    expect(v6 && cidrContains(v6, ip("10.0.0.1"))).toBe(false);
  });
});

describe("classification", () => {
  test.each([
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.0.1", "private"],
    ["169.254.169.254", "link-local"],
    ["100.64.0.1", "shared"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["198.18.0.1", "benchmarking"],
    ["203.0.113.9", "documentation"],
    ["172.32.0.1", "global"],
    ["8.8.8.8", "global"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fe80::1", "link-local"],
    ["fd12:3456::1", "private"],
    ["fc00::1", "private"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"],
    ["2606:4700::1111", "global"],
    // IPv6 forms that carry an IPv4 address are judged by it.
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:10.1.2.3", "private"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::127.0.0.1", "loopback"],
    ["64:ff9b::10.0.0.1", "private"],
    ["64:ff9b::8.8.8.8", "global"],
    ["2002:7f00:1::", "loopback"],
    ["2002:c0a8:101::1", "private"],
    ["2001::1", "reserved"],
    ["4000::1", "reserved"],
  ])("%s is %s", (text, kind) => {
    expect(classifyAddress(ip(text))).toBe(kind as ReturnType<typeof classifyAddress>);
  });
});

describe("forbiddenReason", () => {
  test("names the kind of address", () => {
    expect(forbiddenReason(ip("127.0.0.1"))).toBe("127.0.0.1 is a loopback address");
    expect(forbiddenReason(ip("::ffff:192.168.1.1"))).toBe("192.168.1.1 is a private-network address");
    expect(forbiddenReason(ip("8.8.8.8"))).toBeUndefined();
  });

  test("this machine's own public addresses are refused too", () => {
    const local = [ip("93.184.216.34")];
    expect(forbiddenReason(ip("93.184.216.34"), local)).toBe("93.184.216.34 is an address of this machine");
    expect(forbiddenReason(ip("::ffff:93.184.216.34"), local)).toBe("93.184.216.34 is an address of this machine");
    expect(forbiddenReason(ip("93.184.216.35"), local)).toBeUndefined();
  });
});
