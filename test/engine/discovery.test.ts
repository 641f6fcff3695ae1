import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/core/errors.ts";
import { parseEngineAddress } from "../../src/engine/address.ts";
import { contextDigest, defaultSockets, discoverEngine, type DiscoveryInput } from "../../src/engine/discovery.ts";

/** A fake filesystem: files with contents, and sockets that merely exist. */
function input(opts: { flag?: string; env?: Record<string, string>; files?: Record<string, string>; sockets?: string[]; platform?: string }): DiscoveryInput {
  const files = opts.files ?? {};
  const sockets = new Set(opts.sockets ?? []);
  return {
    hostFlag: opts.flag,
    env: opts.env ?? {},
    homeDir: "/home/u",
    readFile: (path) => files[path],
    exists: (path) => sockets.has(path) || path in files,
    platform: opts.platform ?? "linux",
  };
}

const meta = (host: string, skip = false) => JSON.stringify({ Name: "x", Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: skip } } });
const ctxFiles = (configDir: string, name: string, host: string, tls?: { ca?: string; cert?: string; key?: string }, skip = false) => {
  const d = contextDigest(name);
  const files: Record<string, string> = { [`${configDir}/contexts/meta/${d}/meta.json`]: meta(host, skip) };
  for (const [k, v] of Object.entries(tls ?? {})) if (v) files[`${configDir}/contexts/tls/${d}/docker/${k}.pem`] = v;
  return files;
};

describe("discoverEngine: the docker CLI's order", () => {
  test("--host beats DOCKER_HOST, which beats contexts and sockets", () => {
    const files = { "/home/u/.docker/config.json": JSON.stringify({ currentContext: "c" }), ...ctxFiles("/home/u/.docker", "c", "tcp://ctx:2375") };
    const env = { DOCKER_HOST: "tcp://env:2375", DOCKER_CONTEXT: "c" };
    expect(discoverEngine(input({ flag: "unix:///flag.sock", env, files, sockets: ["/var/run/docker.sock"] }))).toMatchObject({
      address: { kind: "unix", socketPath: "/flag.sock" },
      source: "--host flag",
    });
    expect(discoverEngine(input({ env, files, sockets: ["/var/run/docker.sock"] }))).toMatchObject({ address: { kind: "tcp", host: "env" }, source: "DOCKER_HOST" });
  });

  test("DOCKER_CONTEXT beats config.json's currentContext", () => {
    const files = {
      "/home/u/.docker/config.json": JSON.stringify({ currentContext: "fromfile" }),
      ...ctxFiles("/home/u/.docker", "fromfile", "tcp://file:2375"),
      ...ctxFiles("/home/u/.docker", "fromenv", "ssh://me@envhost"),
    };
    const choice = discoverEngine(input({ env: { DOCKER_CONTEXT: "fromenv" }, files }));
    expect(choice.address).toMatchObject({ kind: "ssh", host: "envhost", username: "me" });
    expect(choice.source).toBe('context "fromenv" (DOCKER_CONTEXT)');
    expect(discoverEngine(input({ files })).source).toBe('context "fromfile" (/home/u/.docker/config.json)');
  });

  test("DOCKER_CONFIG moves config.json and the context store", () => {
    const files = { "/cfg/config.json": JSON.stringify({ currentContext: "c" }), ...ctxFiles("/cfg", "c", "unix:///ctx.sock") };
    expect(discoverEngine(input({ env: { DOCKER_CONFIG: "/cfg" }, files })).address).toMatchObject({ kind: "unix", socketPath: "/ctx.sock" });
  });

  test('context "default" falls through to the sockets', () => {
    const files = { "/home/u/.docker/config.json": JSON.stringify({ currentContext: "default" }) };
    expect(discoverEngine(input({ files, sockets: ["/var/run/docker.sock"] }))).toMatchObject({ address: { socketPath: "/var/run/docker.sock" }, source: "system Docker socket" });
    expect(discoverEngine(input({ env: { DOCKER_CONTEXT: "default" }, sockets: ["/run/podman/podman.sock"] })).source).toBe("Podman socket");
  });

  test("a broken config.json is ignored, like the docker CLI does", () => {
    const files = { "/home/u/.docker/config.json": "{not json" };
    expect(discoverEngine(input({ files, sockets: ["/var/run/docker.sock"] })).source).toBe("system Docker socket");
  });

  test("a missing or broken context is a usage error naming it", () => {
    expect(() => discoverEngine(input({ env: { DOCKER_CONTEXT: "gone" } }))).toThrow(UsageError);
    expect(() => discoverEngine(input({ env: { DOCKER_CONTEXT: "gone" } }))).toThrow(/context "gone" not found/);
    const d = contextDigest("bad");
    expect(() => discoverEngine(input({ env: { DOCKER_CONTEXT: "bad" }, files: { [`/home/u/.docker/contexts/meta/${d}/meta.json`]: "{}" } }))).toThrow(/no Docker endpoint/);
  });

  test("the context store is keyed by the SHA-256 of the name", () => {
    // What `docker context create remote` (docker CLI 20.10) wrote: contexts/meta/<this>/meta.json
    // and contexts/tls/<this>/docker/{ca,cert,key}.pem.
    expect(contextDigest("remote")).toBe("b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a");
  });

  test("a context's TLS files: verified unless SkipTLSVerify; none means plain tcp", () => {
    const withTls = ctxFiles("/home/u/.docker", "t", "tcp://h:2376", { ca: "CA", cert: "CERT", key: "KEY" });
    const verified = discoverEngine(input({ env: { DOCKER_CONTEXT: "t" }, files: withTls }));
    expect(verified.address).toMatchObject({ kind: "tcp", tls: true });
    expect(verified.tls).toEqual({ verify: true, ca: "CA", cert: "CERT", key: "KEY" });

    const skipping = discoverEngine(input({ env: { DOCKER_CONTEXT: "t" }, files: ctxFiles("/home/u/.docker", "t", "tcp://h:2375", { ca: "CA" }, true) }));
    expect(skipping.address).toMatchObject({ tls: true });
    expect(skipping.tls?.verify).toBe(false);

    const plain = discoverEngine(input({ env: { DOCKER_CONTEXT: "t" }, files: ctxFiles("/home/u/.docker", "t", "tcp://h:2375") }));
    expect(plain.address).toMatchObject({ kind: "tcp", tls: false });
    expect(plain.tls).toBeUndefined();
  });

  test("default sockets: rootless Docker, system Docker, Docker Desktop, rootless Podman, rootful Podman; first that exists", () => {
    const env = { XDG_RUNTIME_DIR: "/run/user/1000" };
    expect(defaultSockets({ env, homeDir: "/home/u" }).map((s) => s.path)).toEqual([
      "/run/user/1000/docker.sock",
      "/var/run/docker.sock",
      "/home/u/.docker/run/docker.sock",
      "/run/user/1000/podman/podman.sock",
      "/run/podman/podman.sock",
    ]);
    expect(discoverEngine(input({ env, sockets: ["/run/user/1000/docker.sock", "/var/run/docker.sock"] })).source).toBe("rootless Docker socket");
    expect(discoverEngine(input({ env, sockets: ["/run/user/1000/podman/podman.sock", "/run/podman/podman.sock"] })).source).toBe("rootless Podman socket");
    expect(discoverEngine(input({ sockets: ["/run/podman/podman.sock"] })).address.url).toBe("unix:///run/podman/podman.sock");
  });

  test("no socket at all: the system socket, with the list of places looked at", () => {
    const choice = discoverEngine(input({}));
    expect(choice.address.url).toBe("unix:///var/run/docker.sock");
    expect(choice.tried).toContain("/run/podman/podman.sock");
  });

  test("Windows: named pipes", () => {
    const choice = discoverEngine(input({ platform: "win32", sockets: ["\\\\.\\pipe\\docker_engine"] }));
    expect(choice.address).toEqual({ kind: "npipe", socketPath: "\\\\.\\pipe\\docker_engine", url: "npipe:////./pipe/docker_engine" });
    expect(discoverEngine(input({ platform: "win32", sockets: ["\\\\.\\pipe\\podman-machine-default"] })).source).toBe("Podman machine's named pipe");
  });
});

describe("discoverEngine: TLS from the environment", () => {
  const certs = { "/certs/ca.pem": "CA", "/certs/cert.pem": "CERT", "/certs/key.pem": "KEY" };

  test("DOCKER_TLS_VERIFY turns TLS and verification on; DOCKER_CERT_PATH holds the files", () => {
    const choice = discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:2375", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/certs" }, files: certs }));
    expect(choice.address).toMatchObject({ tls: true, port: 2375 });
    expect(choice.tls).toEqual({ verify: true, ca: "CA", cert: "CERT", key: "KEY" });
  });

  test('any non-empty DOCKER_TLS_VERIFY counts, "0" too (docker CLI)', () => {
    expect(discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:1", DOCKER_TLS_VERIFY: "0" } })).tls?.verify).toBe(true);
    expect(discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:1", DOCKER_TLS_VERIFY: "" } })).address).toMatchObject({ tls: false });
  });

  test("https:// or port 2376 without DOCKER_TLS_VERIFY: TLS without verifying the server", () => {
    for (const host of ["https://h:9999", "tcp://h:2376"]) {
      const choice = discoverEngine(input({ env: { DOCKER_HOST: host, DOCKER_CERT_PATH: "/certs" }, files: certs }));
      expect(choice.address).toMatchObject({ tls: true });
      expect(choice.tls?.verify).toBe(false);
    }
  });

  test("the default cert path is the docker config folder", () => {
    const files = { "/cfg/ca.pem": "CA2" };
    expect(discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:2376", DOCKER_CONFIG: "/cfg" }, files })).tls?.ca).toBe("CA2");
    expect(discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:2376" }, files: { "/home/u/.docker/ca.pem": "CA3" } })).tls?.ca).toBe("CA3");
  });

  test("a DOCKER_CERT_PATH without the files is an error naming them (docker CLI too)", () => {
    expect(() => discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:2376", DOCKER_CERT_PATH: "/certs" }, files: { "/certs/ca.pem": "CA" } }))).toThrow(
      "DOCKER_CERT_PATH /certs has no cert.pem, key.pem",
    );
  });

  test("a bad DOCKER_HOST is a usage error naming the source", () => {
    expect(() => discoverEngine(input({ env: { DOCKER_HOST: "ftp://x" } }))).toThrow(/DOCKER_HOST: .*unsupported scheme/);
    expect(() => discoverEngine(input({ flag: "ftp://x" }))).toThrow(/--host flag/);
  });
});

describe("discoverEngine: ssh", () => {
  test("identities, agent and known_hosts are gathered for ssh:// engines only", () => {
    const files = { "/home/u/.ssh/id_ed25519": "KEY1", "/home/u/.ssh/id_rsa": "KEY2", "/home/u/.ssh/known_hosts": "h ssh-ed25519 AAAA" };
    const choice = discoverEngine(input({ env: { DOCKER_HOST: "ssh://h", SSH_AUTH_SOCK: "/agent", USER: "me" }, files }));
    expect(choice.ssh).toEqual({
      agent: "/agent",
      identities: [
        { path: "/home/u/.ssh/id_ed25519", key: "KEY1" },
        { path: "/home/u/.ssh/id_rsa", key: "KEY2" },
      ],
      knownHosts: "h ssh-ed25519 AAAA",
      knownHostsPath: "/home/u/.ssh/known_hosts",
      user: "me",
    });
    expect(discoverEngine(input({ env: { DOCKER_HOST: "tcp://h:2375" }, files })).ssh).toBeUndefined();
  });
});

describe("parseEngineAddress: named pipes", () => {
  test("npipe:////./pipe/NAME becomes the Windows path \\\\.\\pipe\\NAME", () => {
    expect(parseEngineAddress("npipe:////./pipe/docker_engine")).toEqual({ kind: "npipe", socketPath: "\\\\.\\pipe\\docker_engine", url: "npipe:////./pipe/docker_engine" });
    expect(parseEngineAddress("npipe://./pipe/podman")).toMatchObject({ socketPath: "\\\\.\\pipe\\podman" });
    expect(parseEngineAddress("npipe://")).toMatchObject({ socketPath: "\\\\.\\pipe\\docker_engine" });
  });
});
