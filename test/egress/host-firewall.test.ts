import { expect, test } from "bun:test";
import { applyHostFirewall, firewallRuleProblem, firewallScript } from "../../src/egress/host-firewall.ts";

const rule = { bridge: "sbx-0123456789a", gateway: "172.20.0.1", port: 3128, network: "sandbox-egress-0123456789ab" };

test("added: ACCEPT for the proxy's port first, DROP for the rest of the bridge right below, both commented", () => {
  expect(firewallScript(rule, "add")).toBe(
    [
      "*filter",
      '-I INPUT 1 -i sbx-0123456789a -p tcp -d 172.20.0.1 --dport 3128 -m comment --comment "sandbox egress sandbox-egress-0123456789ab" -j ACCEPT',
      '-I INPUT 2 -i sbx-0123456789a -m comment --comment "sandbox egress sandbox-egress-0123456789ab" -j DROP',
      "COMMIT",
      "",
    ].join("\n"),
  );
  expect(firewallScript(rule, "remove")).toContain('-D INPUT -i sbx-0123456789a -m comment --comment "sandbox egress sandbox-egress-0123456789ab" -j DROP');
});

test("nothing odd reaches the rule text", async () => {
  expect(firewallRuleProblem(rule)).toBeUndefined();
  expect(firewallRuleProblem({ ...rule, bridge: "sbx-x\n-A INPUT" })).toContain("bridge name");
  expect(firewallRuleProblem({ ...rule, bridge: "a-name-longer-than-15" })).toContain("bridge name");
  expect(firewallRuleProblem({ ...rule, gateway: "fe80::1" })).toContain("gateway");
  expect(firewallRuleProblem({ ...rule, port: 0 })).toContain("port");
  expect(firewallRuleProblem({ ...rule, network: 'x" -j ACCEPT' })).toContain("network name");
  const ran: string[] = [];
  const result = await applyHostFirewall({ ...rule, network: "a b" }, "add", async (script) => void ran.push(script));
  expect(result).toEqual({ ok: false, why: 'unexpected network name "a b"' });
  expect(ran).toEqual([]);
});

test("a runner that fails gives the reason; a missing program is named", async () => {
  expect(await applyHostFirewall(rule, "add", async () => Promise.reject(new Error("Permission denied (you must be root)")))).toEqual({
    ok: false,
    why: "Permission denied (you must be root)",
  });
  expect(await applyHostFirewall(rule, "add", async () => Promise.reject(Object.assign(new Error("spawn"), { code: "ENOENT" })))).toEqual({
    ok: false,
    why: "iptables-restore is not installed",
  });
});
