import { describe, expect, test } from "bun:test";
import { parseIp } from "../../src/egress/address-policy.ts";
import { parseAllowList } from "../../src/egress/allowlist.ts";
import { addressRule, decide, type RequestFacts } from "../../src/egress/decide.ts";

function rules(entries: string[]) {
  const parsed = parseAllowList(entries);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value.rules;
}

/** verdict and the text of the deciding rule ("-" when none decided). */
function outcome(list: ReturnType<typeof rules>, request: RequestFacts): string {
  const d = decide(list, request);
  return `${d.verdict} ${d.rule?.text ?? "-"}`;
}

describe("first match wins", () => {
  // docs/egress.md: allow one host of a domain, refuse the rest of the domain, allow everything else.
  const exceptions = rules(["jira.corp.example", "!*.corp.example", "*"]);

  test("the exceptions example", () => {
    expect(outcome(exceptions, { host: "jira.corp.example", port: 443 })).toBe("allow jira.corp.example");
    expect(outcome(exceptions, { host: "wiki.corp.example", port: 443 })).toBe("deny !*.corp.example");
    expect(outcome(exceptions, { host: "a.b.corp.example", port: 80 })).toBe("deny !*.corp.example");
    expect(outcome(exceptions, { host: "pypi.org", port: 443 })).toBe("allow *");
    // The wildcard is for names below the domain; the domain itself falls through to *.
    expect(outcome(exceptions, { host: "corp.example", port: 443 })).toBe("allow *");
  });

  test("the decision names the rule, its position and why", () => {
    expect(decide(exceptions, { host: "wiki.corp.example", port: 443 })).toMatchObject({ verdict: "deny", index: 1, needsRequest: false, reason: "denied by !*.corp.example" });
    expect(decide(exceptions, { host: "jira.corp.example", port: 443 })).toMatchObject({ verdict: "allow", index: 0, reason: "matched jira.corp.example" });
    const none = decide(rules(["a.test"]), { host: "b.test", port: 443 });
    expect(none).toEqual({ verdict: "deny", needsRequest: false, reason: "not on the allow-list" });
  });

  test("names are compared case-insensitively and without a trailing dot", () => {
    expect(outcome(exceptions, { host: "JIRA.Corp.Example.", port: 443 })).toBe("allow jira.corp.example");
    expect(outcome(exceptions, { host: "Wiki.CORP.example.", port: 443 })).toBe("deny !*.corp.example");
    expect(outcome(rules(["API.Test."]), { host: "api.test", port: 1 })).toBe("allow API.Test.");
  });

  test("ports: a rule with a port matches that port only", () => {
    const list = rules(["!a.test:80", "a.test", "b.test:443"]);
    expect(outcome(list, { host: "a.test", port: 80 })).toBe("deny !a.test:80");
    expect(outcome(list, { host: "a.test", port: 443 })).toBe("allow a.test");
    expect(outcome(list, { host: "b.test", port: 8443 })).toBe("deny -");
    expect(outcome(rules(["a.test", "*:443"]), { host: "z.test", port: 80 })).toBe("deny -");
  });

  test("IP literals match address rules and *, never names", () => {
    const list = rules(["!10.1.2.3", "10.0.0.0/8", "localhost", "[2001:db8::1]:443"]);
    expect(outcome(list, { host: "10.1.2.3", port: 80 })).toBe("deny !10.1.2.3");
    expect(outcome(list, { host: "10.9.9.9", port: 80 })).toBe("allow 10.0.0.0/8");
    expect(outcome(list, { host: "::ffff:10.9.9.9", port: 80 })).toBe("allow 10.0.0.0/8");
    expect(outcome(list, { host: "127.0.0.1", port: 80 })).toBe("deny -");
    expect(outcome(list, { host: "2001:db8::1", port: 443 })).toBe("allow [2001:db8::1]:443");
    expect(outcome(rules(["*"]), { host: "203.0.113.9", port: 443 })).toBe("allow *");
    expect(decide(rules(["*"]), { host: "not a host", port: 443 }).verdict).toBe("deny");
  });
});

describe("method and path rules", () => {
  const github = rules(["GET|HEAD api.github.com/repos/**", "!POST api.test/admin/**", "api.test"]);

  test("plain requests are checked against method and path", () => {
    expect(outcome(github, { host: "api.github.com", port: 80, method: "GET", path: "/repos/o/r" })).toBe("allow GET|HEAD api.github.com/repos/**");
    expect(outcome(github, { host: "api.github.com", port: 80, method: "HEAD", path: "/repos" })).toBe("allow GET|HEAD api.github.com/repos/**");
    expect(outcome(github, { host: "api.github.com", port: 80, method: "GET", path: "/repos/o/r?page=2" })).toBe("allow GET|HEAD api.github.com/repos/**");
    expect(outcome(github, { host: "api.github.com", port: 80, method: "POST", path: "/repos/o/r" })).toBe("deny -");
    expect(outcome(github, { host: "api.github.com", port: 80, method: "GET", path: "/user" })).toBe("deny -");
    expect(outcome(github, { host: "api.github.com", port: 80, method: "GET", path: "/reposX" })).toBe("deny -");
    expect(decide(github, { host: "api.github.com", port: 80, method: "POST", path: "/repos/o/r" }).reason).toBe("no rule allows POST /repos/o/r on this host");
  });

  test("a deny rule limited to a method refuses only that method", () => {
    expect(outcome(github, { host: "api.test", port: 80, method: "POST", path: "/admin/users" })).toBe("deny !POST api.test/admin/**");
    expect(outcome(github, { host: "api.test", port: 80, method: "GET", path: "/admin/users" })).toBe("allow api.test");
    expect(outcome(github, { host: "api.test", port: 80, method: "POST", path: "/public" })).toBe("allow api.test");
  });

  test("another spelling of a path is no way around a rule", () => {
    // %61 is "a": the same path to the server, so the same decision.
    expect(outcome(github, { host: "api.test", port: 80, method: "POST", path: "/%61dmin/users" })).toBe("deny !POST api.test/admin/**");
    // Encoded slashes and dot segments are read differently by different servers: refused outright.
    const d = decide(github, { host: "api.test", port: 80, method: "POST", path: "/x/..%2Fadmin/users" });
    expect(d).toMatchObject({ verdict: "deny", index: 1 });
    expect(d.reason).toBe("!POST api.test/admin/** cannot judge a path with an encoded / or a \\ (%2F, %5C), which servers read differently");
    expect(decide(github, { host: "api.test", port: 80, method: "POST", path: "/a/../admin" }).verdict).toBe("deny");
  });

  test("a tunnel shows no method or path: refused when requests inside it could be decided differently", () => {
    const tunnel = decide(github, { host: "api.github.com", port: 443 });
    expect(tunnel).toMatchObject({ verdict: "deny", index: 0, needsRequest: true });
    expect(tunnel.reason).toBe("GET|HEAD api.github.com/repos/** depends on the method or path, which a CONNECT tunnel does not show (sandbox does not decrypt TLS)");
    expect(decide(github, { host: "api.test", port: 443 })).toMatchObject({ verdict: "deny", index: 1, needsRequest: true });
    // Every request would be allowed either way: the tunnel is allowed by the rule that covers the rest.
    expect(decide(rules(["GET a.test/x/**", "a.test"]), { host: "a.test", port: 443 })).toMatchObject({ verdict: "allow", index: 1, needsRequest: false });
    // Every request would be refused either way: refused, and nothing to look inside for.
    expect(decide(rules(["!POST a.test/**", "!a.test"]), { host: "a.test", port: 443 })).toMatchObject({ verdict: "deny", index: 1, needsRequest: false });
    // A host without such rules is decided as before.
    expect(outcome(github, { host: "other.test", port: 443 })).toBe("deny -");
  });

  test("a method alone is enough when the rule limits only methods", () => {
    const list = rules(["GET|HEAD a.test"]);
    expect(outcome(list, { host: "a.test", port: 80, method: "GET" })).toBe("allow GET|HEAD a.test");
    expect(outcome(list, { host: "a.test", port: 80, method: "DELETE" })).toBe("deny -");
    expect(decide(list, { host: "a.test", port: 443 }).needsRequest).toBe(true);
  });
});

describe("address rules for resolved addresses", () => {
  const list = rules(["!10.1.2.3", "10.0.0.0/8", "*.corp.example", "*"]);
  const at = (ip: string, port = 80) => addressRule(list, parseIp(ip) as Uint8Array, port)?.text;

  test("the first IP or CIDR rule covering the address, allow or deny; names and * never count", () => {
    expect(at("10.1.2.3")).toBe("!10.1.2.3");
    expect(at("10.9.9.9")).toBe("10.0.0.0/8");
    expect(at("::ffff:10.9.9.9")).toBe("10.0.0.0/8");
    expect(at("127.0.0.1")).toBeUndefined();
    expect(at("203.0.113.1")).toBeUndefined();
    expect(addressRule(rules(["10.0.0.0/8:5432"]), parseIp("10.0.0.1") as Uint8Array, 80)).toBeUndefined();
  });
});
