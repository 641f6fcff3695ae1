import { describe, expect, test } from "bun:test";
import { parseHostsTable } from "../../src/egress/resolve.ts";

describe("resolution", () => {
  test("hosts tables: several names and addresses, comments", () => {
    const t = parseHostsTable("# c\n10.0.0.1 a.test B.test # x\n::1 a.test\nnot-an-ip c.test\n");
    expect(t.get("a.test")).toEqual(["10.0.0.1", "::1"]);
    expect(t.get("b.test")).toEqual(["10.0.0.1"]);
    expect(t.has("c.test")).toBe(false);
  });
});
