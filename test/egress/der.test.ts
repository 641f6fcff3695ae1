import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { bitString, boolean, explicit, namedBits, oid, sequence, set, smallInteger, time, tlv, unsignedInteger, utf8String } from "../../src/egress/der.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("DER encoding", () => {
  test("lengths: short form below 128, then the fewest long-form bytes", () => {
    expect(hex(tlv(0x04, new Uint8Array(127))).slice(0, 4)).toBe("047f");
    expect(hex(tlv(0x04, new Uint8Array(128))).slice(0, 6)).toBe("048180");
    expect(hex(tlv(0x04, new Uint8Array(256))).slice(0, 8)).toBe("04820100");
    expect(hex(tlv(0x04, new Uint8Array(70000))).slice(0, 10)).toBe("0483011170");
  });

  test("integers are minimal and never read as negative", () => {
    expect(hex(smallInteger(0))).toBe("020100");
    expect(hex(smallInteger(2))).toBe("020102");
    expect(hex(smallInteger(128))).toBe("02020080");
    expect(hex(smallInteger(256))).toBe("02020100");
    expect(hex(unsignedInteger(Uint8Array.of(0, 0, 0x7f)))).toBe("02017f");
    expect(hex(unsignedInteger(Uint8Array.of(0xff, 1)))).toBe("020300ff01");
  });

  test("object identifiers, with multi-byte arcs", () => {
    expect(hex(oid("2.5.29.19"))).toBe("0603551d13");
    expect(hex(oid("1.2.840.10045.4.3.2"))).toBe("06082a8648ce3d040302");
    expect(hex(oid("1.3.6.1.5.5.7.3.1"))).toBe("06082b06010505070301");
    expect(() => oid("3.1")).toThrow();
  });

  test("named bit strings drop trailing zero bits (keyUsage)", () => {
    expect(hex(namedBits([0]))).toBe("03020780"); // digitalSignature
    expect(hex(namedBits([5, 6]))).toBe("03020106"); // keyCertSign, cRLSign
    expect(hex(bitString(Uint8Array.of(0xab)))).toBe("030200ab");
  });

  test("times: UTCTime through 2049, GeneralizedTime from 2050, whole seconds", () => {
    expect(Buffer.from(time(new Date("2026-03-04T05:06:07.890Z")).subarray(2)).toString()).toBe("260304050607Z");
    expect(time(new Date("2026-03-04T05:06:07Z"))[0]).toBe(0x17);
    expect(Buffer.from(time(new Date("2050-01-01T00:00:00Z")).subarray(2)).toString()).toBe("20500101000000Z");
    expect(time(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  });

  test("SET OF members are sorted; booleans are 00/FF", () => {
    expect(hex(set(smallInteger(3), smallInteger(1)))).toBe("3106020101020103");
    expect(hex(boolean(true))).toBe("0101ff");
  });

  test("openssl parses a structure built from every encoder", () => {
    const der = sequence(boolean(true), smallInteger(300), oid("2.5.4.3"), utf8String("héllo"), explicit(0, time(new Date("2030-01-01T00:00:00Z"))), bitString(Uint8Array.of(1, 2)));
    const out = execFileSync("openssl", ["asn1parse", "-inform", "DER"], { input: Buffer.from(der) }).toString();
    expect(out).toContain("BOOLEAN");
    expect(out).toContain("INTEGER           :012C");
    expect(out).toContain("commonName");
    expect(out).toContain("UTF8STRING");
    expect(out).toContain("UTCTIME           :300101000000Z");
    expect(out).toContain("BIT STRING");
  });
});
