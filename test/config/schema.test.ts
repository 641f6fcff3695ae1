import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { formatIssues } from "../../src/config/errors.ts";
import { GlobalConfigSchema, WorkspaceFileSchema } from "../../src/config/schema.ts";

function globalProblems(input: unknown): string[] {
  const result = v.safeParse(GlobalConfigSchema, input);
  return result.success ? [] : formatIssues(result.issues);
}

function workspaceProblems(input: unknown): string[] {
  const result = v.safeParse(WorkspaceFileSchema, input);
  return result.success ? [] : formatIssues(result.issues);
}

const FULL = {
  images: { python: "python:3.13-slim", py: "python:3.12", default: "debian:bookworm-slim", "g++": "gcc:14" },
  env: { allow: ["MY_*"], block: ["*_TOKEN"] },
  container: { timeout: "1h30m", network: "none", remove: false },
  security: {
    memory: "8g",
    cpus: 1.5,
    pids: 256,
    seccomp: "/etc/sandbox/seccomp.json",
    read_only_root: false,
    user: "1000:1000",
    cap_add: ["NET_ADMIN", "CAP_SYS_PTRACE"],
  },
  agents: { claude: { image: "ghcr.io/me/claude:1", env: ["ANTHROPIC_API_KEY"], persist_state: true } },
  paths: { workspace: "/src", cache: "~/.cache/sandbox" },
  network: { egress: ["api.anthropic.com", "*.github.com"] },
  workspace: { mask: [".env*"], protect: [".git/hooks"] },
};

describe("global config schema", () => {
  test("accepts every documented key", () => {
    const result = v.safeParse(GlobalConfigSchema, FULL);
    expect(result.issues).toBeUndefined();
    expect(result.output).toEqual(FULL);
  });

  test("accepts an empty mapping and numbers where YAML gives them", () => {
    expect(globalProblems({})).toEqual([]);
    expect(globalProblems({ container: { timeout: 90 }, security: { memory: 1073741824, user: 1000 } })).toEqual([]);
  });

  test("sizes, durations and numbers are checked", () => {
    expect(globalProblems({ security: { memory: "4XB" } })).toEqual([
      'security.memory: expected a size such as 512m, 4g or 4GiB, got "4XB"',
    ]);
    expect(globalProblems({ container: { timeout: "soon" } })).toEqual([
      'container.timeout: expected a duration such as 90s, 30m, 1h30m or 500ms, got "soon"',
    ]);
    expect(globalProblems({ container: { timeout: "0s" } })[0]).toStartWith("container.timeout: expected a duration");
    expect(globalProblems({ security: { cpus: 0 } })).toEqual(["security.cpus: expected a positive number of CPUs such as 1.5, got 0"]);
    expect(globalProblems({ security: { cpus: "2" } })[0]).toStartWith("security.cpus:");
    expect(globalProblems({ security: { pids: 1.5 } })).toEqual(["security.pids: expected a positive whole number such as 512, got 1.5"]);
    expect(globalProblems({ security: { pids: -1 } })[0]).toStartWith("security.pids:");
    expect(globalProblems({ container: { remove: "yes" } })).toEqual(['container.remove: expected true or false, got "yes"']);
  });

  test("capability names, with or without CAP_", () => {
    expect(globalProblems({ security: { cap_add: ["CAP_NET_RAW", "NET_RAW"] } })).toEqual([]);
    expect(globalProblems({ security: { cap_add: ["net_raw", "NET-RAW"] } })).toEqual([
      'security.cap_add.0: expected a capability name such as NET_ADMIN or CAP_NET_ADMIN, got "net_raw"',
      'security.cap_add.1: expected a capability name such as NET_ADMIN or CAP_NET_ADMIN, got "NET-RAW"',
    ]);
    expect(globalProblems({ security: { cap_add: "NET_RAW" } })).toEqual([
      'security.cap_add: expected a list of capability names, got "NET_RAW"',
    ]);
  });

  test("network names", () => {
    for (const network of ["bridge", "none", "my-net", "host"]) expect(globalProblems({ container: { network } })).toEqual([]);
    expect(globalProblems({ container: { network: "container:abc" } })[0]).toStartWith("container.network:");
    expect(globalProblems({ container: { network: 1 } })[0]).toStartWith("container.network:");
  });

  test("every unknown key is reported at its own path", () => {
    expect(globalProblems({ bogus: 1, security: { memroy: "4g", foo: 1 } })).toEqual([
      "security.memroy: unknown key (expected one of: memory, cpus, pids, user, cap_add, seccomp, read_only_root, ca_certs, allow)",
      "security.foo: unknown key (expected one of: memory, cpus, pids, user, cap_add, seccomp, read_only_root, ca_certs, allow)",
      "bogus: unknown key (expected one of: images, agents, credentials, container, paths, workspace, env, security, network, build)",
    ]);
    expect(globalProblems({ agents: { claude: { persist: true } } })[0]).toStartWith("agents.claude.persist: unknown key");
  });

  test("reserved keys are refused, not silently dropped", () => {
    const input = JSON.parse('{"__proto__": {"x": 1}}');
    expect(globalProblems(input)[0]).toContain('"__proto__": unknown key');
    expect(globalProblems({ security: { constructor: 1 } })[0]).toContain('security: "constructor": unknown key');
    expect(globalProblems({ images: { constructor: "x" } })).toEqual(['images: "constructor" cannot be used as a key']);
    expect(workspaceProblems({ env: { constructor: "x" } })).toEqual(['env: "constructor" cannot be used as a key']);
  });

  test("a list where a mapping belongs", () => {
    expect(globalProblems([1, 2])[0]).toStartWith("(top level): expected a mapping with keys images, agents, credentials, container");
    expect(globalProblems({ security: ["memory"] })[0]).toStartWith("security: expected a mapping with keys memory");
    expect(globalProblems({ images: ["python"] })).toEqual(["images: expected a mapping of names to images, got a list"]);
  });

  test("image and agent names are checked", () => {
    expect(globalProblems({ images: { python: "has space" } })[0]).toStartWith("images.python: expected an image");
    expect(globalProblems({ images: { "bad name": "x" } })[0]).toStartWith("images.bad name: expected a command or agent name");
    expect(globalProblems({ agents: { claude: { env: ["NOT-A-NAME"] } } })[0]).toStartWith("agents.claude.env.0: expected a variable name");
  });

  test("paths", () => {
    expect(globalProblems({ paths: { workspace: "work" } })[0]).toStartWith("paths.workspace: expected an absolute path");
    expect(globalProblems({ paths: { workspace: "/" } })[0]).toStartWith("paths.workspace:");
    expect(globalProblems({ paths: { workspace: "/a/../etc" } })[0]).toStartWith("paths.workspace:");
    expect(globalProblems({ paths: { cache: "relative/dir" } })[0]).toStartWith("paths.cache:");
    expect(globalProblems({ security: { seccomp: "default" } })).toEqual([]);
    expect(globalProblems({ security: { seccomp: "unconfined" } })).toEqual([]);
    expect(globalProblems({ security: { seccomp: "profile.json" } })[0]).toStartWith("security.seccomp:");
  });

  test("all problems are reported together", () => {
    expect(globalProblems({ security: { memory: "4XB", pids: 0 }, container: { timeout: "soon" } })).toHaveLength(3);
  });
});

describe("workspace file schema", () => {
  test("accepts image, setup, env, network and timeout", () => {
    const input = {
      image: "python:3.12",
      setup: ["pip install -r requirements.txt"],
      env: { DEBUG: "1", PORT: 8080, VERBOSE: true },
      network: "none",
      timeout: "10m",
    };
    const result = v.safeParse(WorkspaceFileSchema, input);
    expect(result.issues).toBeUndefined();
    // Literal env values become strings, as containers see them.
    expect(result.output).toEqual({ ...input, env: { DEBUG: "1", PORT: "8080", VERBOSE: "true" } });
  });

  test("refuses security settings, pointing at the user's config", () => {
    const problems = workspaceProblems({ cap_add: ["SYS_ADMIN"], security: { seccomp: "unconfined" }, privileged: true });
    expect(problems).toHaveLength(3);
    for (const problem of problems) {
      expect(problem).toContain("not allowed in .sandbox.yml");
      expect(problem).toContain("~/.config/sandbox/config.yaml");
    }
    expect(problems[0]).toStartWith("cap_add:");
    expect(problems[1]).toStartWith("security:");
  });

  test("refuses every loosening key", () => {
    for (const key of ["seccomp", "volumes", "mounts", "user", "egress", "agents", "devices", "images", "memory"]) {
      expect(workspaceProblems({ [key]: "x" })[0]).toContain("~/.config/sandbox/config.yaml");
    }
  });

  test("other unknown keys list what is accepted", () => {
    expect(workspaceProblems({ imgae: "x" })).toEqual(["imgae: unknown key (.sandbox.yml accepts only image, timeout, setup, env, network)"]);
  });

  test("env may set values but not forward host variables", () => {
    expect(workspaceProblems({ env: { TOKEN: null } })[0]).toStartWith("env.TOKEN: has no value; forwarding host variables");
    expect(workspaceProblems({ env: ["TOKEN"] })[0]).toStartWith("env: expected a mapping of NAME: value; forwarding host variables");
    expect(workspaceProblems({ env: { "A-B": "1" } })[0]).toStartWith("env.A-B: expected a variable name");
    expect(workspaceProblems({ env: { A: { nested: 1 } } })[0]).toStartWith('env.A: expected a literal value');
  });

  test("network is a name (host and named networks are ignored when resolving, not here) and cannot widen egress", () => {
    expect(workspaceProblems({ network: "bridge" })).toEqual([]);
    expect(workspaceProblems({ network: "my-net" })).toEqual([]);
    expect(workspaceProblems({ network: "host" })).toEqual([]);
    expect(workspaceProblems({ network: "a b" })[0]).toContain("network");
    expect(workspaceProblems({ network: { egress: ["evil.com"] } })[0]).toContain("egress rules can only be set in your own config");
  });

  test("setup steps are strings", () => {
    expect(workspaceProblems({ setup: "make" })).toEqual(['setup: expected a list of shell commands, got "make"']);
    expect(workspaceProblems({ setup: [""] })[0]).toStartWith("setup.0: expected a shell command");
  });
});
