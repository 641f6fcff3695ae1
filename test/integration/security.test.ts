/**
 * Acceptance tests for the issue "Hardened by default": each attack runs
 * inside a real container started by the real CLI and must fail there; where
 * a protection can be switched off, the same attack is also run with it off
 * to show the test can tell the difference.
 *
 * Engine-agnostic on purpose (the suite runs again against Podman): only the
 * CLI and the project's own engine client, never the docker CLI.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, ENGINE_SOCKET, IS_PODMAN, runSandbox, sandboxArgv, TEST_IMAGE, type RunOpts, type RunResult } from "../helpers/sandbox.ts";
import { managedContainers } from "../helpers/engine.ts";
import { defaultSeccompProfile } from "../../src/security/seccomp.ts";

const img = ["--image", TEST_IMAGE];
const work = mkdtempSync(join(tmpdir(), "sandbox-security-"));
const tag = `io.sandbox.workspace=${work}`;

afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(args: string[], opts: RunOpts = {}): Promise<RunResult> {
  return runSandbox(["run", ...img, ...args], { cwd: work, ...opts });
}

async function leftovers(label = tag): Promise<number> {
  return (await managedContainers(label)).length;
}

const out = (r: RunResult) => r.stdout.toString();

/** `probe` lines: NAME errno=E result=R. */
function probeResults(text: string): Map<string, { errno: string; result: string }> {
  const results = new Map<string, { errno: string; result: string }>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) errno=(\S+) result=(\S+)$/.exec(line);
    if (m) results.set(m[1] as string, { errno: m[2] as string, result: m[3] as string });
  }
  return results;
}

/** The probes for the calls the issue names (clone with CLONE_NEWUSER, ptrace on a sibling, socket(AF_VSOCK)...). */
const NAMED_PROBES = [
  "io_uring_setup",
  "userfaultfd",
  "keyctl",
  "bpf",
  "perf_event_open",
  "clone_newuser",
  "ptrace_sibling",
  "process_vm_readv",
  "open_by_handle_at",
  "socket_vsock",
];

/**
 * Named probes that reach the kernel on any Linux once seccomp is off. The
 * others can also be refused by the kernel's own settings (unprivileged user
 * namespaces, vm.unprivileged_userfaultfd, kernel.io_uring_disabled).
 */
const ALWAYS_REACHABLE = ["keyctl", "bpf", "perf_event_open", "ptrace_sibling", "process_vm_readv", "open_by_handle_at", "socket_vsock"];

describe("hardened by default: the syscall probe", () => {
  test("probe all exits 0 and every probe is denied, including each call the issue names", async () => {
    const r = await run(["sh", "-c", "probe list && echo -- && exec probe all"]);
    const [listText = "", resultText = ""] = out(r).split("--\n");
    const names = listText.split("\n").filter(Boolean);
    const results = probeResults(resultText);
    expect(r.code).toBe(0);
    expect(names.length).toBeGreaterThanOrEqual(NAMED_PROBES.length);
    expect([...results.keys()]).toEqual(names);
    for (const name of NAMED_PROBES) expect({ name, ...results.get(name) }).toMatchObject({ name, result: "denied" });
    for (const [name, res] of results) expect({ name, ...res }).toMatchObject({ name, result: "denied" });
    expect(await leftovers()).toBe(0);
  }, 60_000);

  test("the probe can fail: with --seccomp unconfined it finds allowed calls, exits non-zero, and sandbox warns", async () => {
    const r = await run(["--seccomp", "unconfined", "probe", "all"]);
    const results = probeResults(out(r));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("warning: seccomp is unconfined");
    expect([...results.values()].some((x) => x.result === "allowed")).toBe(true);
    for (const name of ALWAYS_REACHABLE) expect({ name, ...results.get(name) }).toMatchObject({ name, result: "allowed" });
  }, 60_000);
});

/**
 * One attack per line, each in its own shell; `unlock` is what would let it
 * through (capabilities to add; seccomp is switched off for all of them).
 */
const ATTACKS: Array<{ name: string; cmd: string; unlock: string[] }> = [
  { name: "mount tmpfs", cmd: "mkdir -p /tmp/mnt && mount -t tmpfs none /tmp/mnt", unlock: ["SYS_ADMIN"] },
  { name: "unshare -U", cmd: "unshare -U true", unlock: [] },
  { name: "unshare -m", cmd: "unshare -m true", unlock: ["SYS_ADMIN"] },
  { name: "unshare -n", cmd: "unshare -n true", unlock: ["SYS_ADMIN"] },
  { name: "chroot", cmd: "chroot / true", unlock: ["SYS_CHROOT"] },
  { name: "mknod", cmd: "mknod /tmp/null c 1 3", unlock: ["MKNOD"] },
  { name: "ping (raw socket)", cmd: "ping -c1 -W2 127.0.0.1", unlock: ["NET_RAW"] },
];

/**
 * Writes the engine refuses through read-only or masked mounts; no flag of
 * ours turns those off. They are written so that they would be harmless even
 * if they got through: sysrq `h` only prints help to the kernel log (`b`
 * would reboot the host), and the MTU of the container's own lo is written
 * back unchanged.
 */
const MOUNT_GUARDED: Array<{ name: string; cmd: string }> = [
  { name: "sysrq-trigger", cmd: "echo h > /proc/sysrq-trigger" },
  { name: "sysfs file", cmd: "cat /sys/class/net/lo/mtu > /sys/class/net/lo/mtu" },
  { name: "sysfs new file", cmd: "touch /sys/sandbox-probe" },
  { name: "cgroupfs", cmd: "mkdir /sys/fs/cgroup/sandbox-probe" },
];

const REFUSED = /Operation not permitted|Permission denied|permission denied|Read-only file system/;

/** A script that runs each check in its own shell and prints `name<TAB>rc<TAB>stderr` per check. */
function checkScript(checks: Array<{ name: string; cmd: string }>): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return checks
    .map((c) => `sh -c ${q(c.cmd)} >/dev/null 2>/tmp/err; printf '%s\\t%s\\t%s\\n' ${q(c.name)} "$?" "$(tr '\\n' ' ' </tmp/err)"`)
    .join("\n");
}

function checkResults(text: string): Map<string, { rc: number; err: string }> {
  const results = new Map<string, { rc: number; err: string }>();
  for (const line of text.split("\n").filter(Boolean)) {
    const [name = "", rc = "", err = ""] = line.split("\t");
    results.set(name, { rc: Number(rc), err });
  }
  return results;
}

describe("hardened by default: inside a default run", () => {
  test("/proc/self/status: no capabilities, no_new_privs set, a seccomp filter", async () => {
    const r = await run(["cat", "/proc/self/status"]);
    expect(r.code).toBe(0);
    expect(out(r)).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(out(r)).toMatch(/^CapPrm:\s+0000000000000000$/m);
    expect(out(r)).toMatch(/^CapBnd:\s+0000000000000000$/m);
    expect(out(r)).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(out(r)).toMatch(/^Seccomp:\s+2$/m);
  }, 60_000);

  test("mount, unshare -U/-m/-n, chroot, mknod and a raw socket each fail, and each works with the protections off", async () => {
    const script = checkScript(ATTACKS);
    const hardened = await run(["sh", "-c", script]);
    expect(hardened.code).toBe(0);
    const denied = checkResults(out(hardened));
    for (const a of ATTACKS) {
      const res = denied.get(a.name);
      expect({ attack: a.name, failed: res !== undefined && res.rc !== 0 }).toEqual({ attack: a.name, failed: true });
      expect({ attack: a.name, err: res?.err }).toMatchObject({ attack: a.name, err: expect.stringMatching(REFUSED) });
    }

    // The control: the same script with the capabilities back and seccomp off.
    const caps = [...new Set(ATTACKS.flatMap((a) => a.unlock))].flatMap((c) => ["--cap-add", c]);
    const open = await run([...caps, "--seccomp", "unconfined", "sh", "-c", script]);
    expect(open.code).toBe(0);
    const allowed = checkResults(out(open));
    for (const a of ATTACKS) expect({ attack: a.name, ...allowed.get(a.name) }).toMatchObject({ attack: a.name, rc: 0 });
    expect(await leftovers()).toBe(0);
  }, 90_000);

  test("mount also fails with only one of the two protections off (capabilities, or seccomp)", async () => {
    const mount = "mkdir -p /tmp/mnt && mount -t tmpfs none /tmp/mnt && echo mounted";
    const capOnly = await run(["--cap-add", "SYS_ADMIN", "sh", "-c", mount]);
    const seccompOnly = await run(["--seccomp", "unconfined", "sh", "-c", mount]);
    const both = await run(["--cap-add", "SYS_ADMIN", "--seccomp", "unconfined", "sh", "-c", mount]);
    expect(capOnly.code).not.toBe(0);
    expect(seccompOnly.code).not.toBe(0);
    expect(both.code).toBe(0);
    expect(out(both)).toBe("mounted\n");
    // Adding SYS_ADMIN is allowed but never silent.
    expect(capOnly.stderr).toContain("--cap-add SYS_ADMIN weakens the sandbox");
  }, 90_000);

  test("/proc/sysrq-trigger and everything under /sys refuse writes", async () => {
    const r = await run(["sh", "-c", `${checkScript(MOUNT_GUARDED)}\n[ -e /proc/sysrq-trigger ] && echo sysrq-present || echo sysrq-absent`]);
    expect(r.code).toBe(0);
    const results = checkResults(out(r));
    const sysrqPresent = out(r).includes("sysrq-present");
    for (const g of MOUNT_GUARDED) {
      const res = results.get(g.name);
      expect({ write: g.name, failed: res !== undefined && res.rc !== 0 }).toEqual({ write: g.name, failed: true });
      // Refused by a read-only/masked mount, not merely missing. A kernel built
      // without magic SysRq has no /proc/sysrq-trigger at all.
      if (g.name === "sysrq-trigger" && !sysrqPresent) continue;
      expect({ write: g.name, err: res?.err }).toMatchObject({ write: g.name, err: expect.stringMatching(REFUSED) });
    }
  }, 60_000);

  test("the root filesystem is read-only while /tmp, $HOME and /work are writable, and $HOME is /home/sandbox", async () => {
    const script = [
      'echo "HOME=$HOME"',
      "touch /x 2>/dev/null; echo root=$?",
      "touch /etc/x 2>/dev/null; echo etc=$?",
      "touch /tmp/x; echo tmp=$?",
      'touch "$HOME/x"; echo home=$?',
      "touch /work/written-in-sandbox; echo work=$?",
      "touch /x",
    ].join("; ");
    const r = await run(["sh", "-c", script]);
    expect(out(r)).toBe("HOME=/home/sandbox\nroot=1\netc=1\ntmp=0\nhome=0\nwork=0\n");
    expect(r.stderr).toContain("Read-only file system");
    expect(existsSync(join(work, "written-in-sandbox"))).toBe(true);
  }, 60_000);
});

// --- a caller who is not root -------------------------------------------------------

function hasTool(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const IS_ROOT = process.getuid?.() === 0;
const USER_TOOLS = ["useradd", "userdel", "groupadd", "groupdel", "setpriv"].filter((t) => !hasTool(t));
const CAN_ADD_USER = IS_ROOT && USER_TOOLS.length === 0;
const NO_USER_REASON = !IS_ROOT ? "skipped: creating a host user needs root" : `skipped: missing ${USER_TOOLS.join(", ")}`;

/** Runs sandbox as `user` (uid, gid and supplementary groups) with setpriv, from `cwd`. */
function runAs(user: { uid: number; gid: number; groups: number[]; home: string }, args: string[], cwd: string): Promise<RunResult> {
  const started = Date.now();
  const env = cleanEnv({ HOME: user.home, XDG_CONFIG_HOME: join(user.home, ".config"), USER: undefined });
  const argv = [
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    `--groups=${[user.gid, ...user.groups].join(",")}`,
    "--",
    ...sandboxArgv(),
    ...args,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("setpriv", argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const o: Buffer[] = [];
    const e: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => o.push(c));
    child.stderr.on("data", (c: Buffer) => e.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(o), stderr: Buffer.concat(e).toString("utf8"), ms: Date.now() - started });
    });
  });
}

/**
 * Lets `user` reach the engine socket: through the socket's group when it has
 * one that may read and write (Docker's `docker` group), otherwise by giving
 * the socket a temporary group (Podman's root-only socket). Returns the
 * supplementary groups to run with and a function that undoes any change.
 */
function grantSocket(name: string): { groups: number[]; undo: () => void } {
  const st = statSync(ENGINE_SOCKET);
  if (st.gid !== 0 && (st.mode & 0o060) === 0o060) return { groups: [st.gid], undo: () => {} };
  execFileSync("groupadd", [name]);
  const gid = Number(execFileSync("getent", ["group", name]).toString().split(":")[2]);
  chownSync(ENGINE_SOCKET, st.uid, gid);
  chmodSync(ENGINE_SOCKET, (st.mode & 0o7777) | 0o060);
  return {
    groups: [gid],
    undo: () => {
      chownSync(ENGINE_SOCKET, st.uid, st.gid);
      chmodSync(ENGINE_SOCKET, st.mode & 0o7777);
      execFileSync("groupdel", [name]);
    },
  };
}

describe("hardened by default: a caller who is not root", () => {
  test.skipIf(!CAN_ADD_USER)(
    `runs as the caller's uid and files in /work belong to the caller${CAN_ADD_USER ? "" : ` (${NO_USER_REASON})`}`,
    async () => {
      const name = `sbxtest-${randomBytes(3).toString("hex")}`;
      execFileSync("useradd", ["-m", "-s", "/bin/sh", name]);
      let undoSocket = () => {};
      const workspace = mkdtempSync(join(tmpdir(), "sandbox-security-user-"));
      try {
        const uid = Number(execFileSync("id", ["-u", name]).toString());
        const gid = Number(execFileSync("id", ["-g", name]).toString());
        const home = execFileSync("getent", ["passwd", name]).toString().split(":")[5] as string;
        const access = grantSocket(name);
        undoSocket = access.undo;
        chownSync(workspace, uid, gid);
        chmodSync(workspace, 0o755);

        const script = ["id -u", "id -g", "touch /work/made-by-user", 'touch "$HOME/x" && echo home-ok', "touch /tmp/x && echo tmp-ok", "touch /x 2>/dev/null || echo root-ro"].join("; ");
        const r = await runAs({ uid, gid, groups: access.groups, home }, ["run", ...img, "sh", "-c", script], workspace);
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining("error") });
        expect(out(r)).toBe(`${uid}\n${gid}\nhome-ok\ntmp-ok\nroot-ro\n`);
        const made = statSync(join(workspace, "made-by-user"));
        expect({ uid: made.uid, gid: made.gid }).toEqual({ uid, gid });
        expect(uid).not.toBe(0);
        expect(await leftovers(`io.sandbox.workspace=${workspace}`)).toBe(0);
      } finally {
        undoSocket();
        rmSync(workspace, { recursive: true, force: true });
        try {
          execFileSync("userdel", ["-r", name], { stdio: "ignore" });
        } catch {
          // userdel -r exits non-zero when the (absent) mail spool cannot be removed; the user is gone.
        }
      }
    },
    120_000,
  );
});

// --- limits ------------------------------------------------------------------------

describe("hardened by default: limits", () => {
  test("a memory hog is killed by --memory: exit 137, the cause reported, no container left", async () => {
    const r = await run(["--memory", "64m", "sh", "-c", "x=a; while true; do x=$x$x; done"]);
    expect(r.code).toBe(137);
    // Podman (4.3, cgroup v1) never marks a container OOMKilled, so there sandbox can only say it was killed.
    if (IS_PODMAN) expect(r.stderr).toMatch(/sandbox: exit 137: the command was killed \(SIGKILL\).*out of memory \(limit 64MiB\), raise it with --memory/);
    else expect(r.stderr).toContain("sandbox: killed: out of memory (limit 64MiB; raise it with --memory)");
    expect(r.ms).toBeLessThan(60_000);
    expect(await leftovers()).toBe(0);
  }, 90_000);

  test("a SIGKILL that is not an OOM kill is not reported as one", async () => {
    const r = await run(["--memory", "64m", "sh", "-c", "kill -9 $$"]);
    expect(r.code).toBe(137);
    expect(r.stderr).toContain("sandbox: exit 137: the command was killed (SIGKILL) and the engine does not say why");
    expect(r.stderr).not.toContain("killed: out of memory");
    expect(await leftovers()).toBe(0);
  }, 90_000);

  test("a fork bomb that holds the process table is stopped by --pids-limit: sandbox returns, reports the limit, leaves nothing", async () => {
    // One spawner forks until the kernel refuses (and then dies); the command
    // itself exec()s, so it needs no fork of its own and waits for the timeout.
    const bomb = "(while :; do sleep 300 & done) 2>/dev/null & exec sleep 300";
    const r = await run(["--pids-limit", "64", "--timeout", "10s", "sh", "-c", bomb]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 124 });
    expect(r.stderr).toContain("timed out after 10s");
    expect(r.stderr).toMatch(/sandbox: the command (hit|ran into) the process limit \(64\)/);
    expect(r.stderr).toContain("raise it with --pids-limit");
    expect(r.ms).toBeLessThan(45_000);
    expect(await leftovers()).toBe(0);
  }, 90_000);

  test("the classic bomb f(){ f|f& }; f is contained: forks are refused and sandbox returns the command's code", async () => {
    const r = await run(["--pids-limit", "64", "--timeout", "20s", "sh", "-c", "f(){ f|f& }; f; sleep 5; exit 0"]);
    // Its shells die when a fork is refused, so it burns out by itself; the
    // last `sleep` may be refused too (exit 2). Either way: no hang, no timeout.
    expect([0, 2]).toContain(r.code as number);
    expect(r.stderr).toContain("can't fork");
    expect(r.ms).toBeLessThan(30_000);
    expect(await leftovers()).toBe(0);
  }, 90_000);
});

// --- environment --------------------------------------------------------------------

const SECRETS = {
  AWS_SECRET_ACCESS_KEY: "aws-secret-value-9f2e",
  GITHUB_TOKEN: "ghp_secretvalue_71c4",
  OPENAI_API_KEY: "sk-secretvalue-0b8d",
};

describe("hardened by default: environment", () => {
  test("host secrets do not reach the command; LANG does", async () => {
    const r = await run(["env"], { env: { ...SECRETS, LANG: "en_GB.UTF-8" } });
    expect(r.code).toBe(0);
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(out(r)).not.toContain(name);
      expect(out(r)).not.toContain(value);
    }
    expect(out(r)).toMatch(/^LANG=en_GB\.UTF-8$/m);
  }, 60_000);

  test("--env GITHUB_TOKEN forwards it on request, with a warning", async () => {
    const r = await run(["--env", "GITHUB_TOKEN", "env"], { env: SECRETS });
    expect(r.code).toBe(0);
    expect(out(r)).toMatch(new RegExp(`^GITHUB_TOKEN=${SECRETS.GITHUB_TOKEN}$`, "m"));
    expect(out(r)).not.toContain("AWS_SECRET_ACCESS_KEY");
    expect(r.stderr).toContain("warning");
    expect(r.stderr).toContain("GITHUB_TOKEN");
    expect(r.stderr).not.toContain(SECRETS.GITHUB_TOKEN);
  }, 60_000);

  test("--dry-run --env GITHUB_TOKEN shows GITHUB_TOKEN=*** and never the value", async () => {
    const r = await run(["--dry-run", "--env", "GITHUB_TOKEN", "env"], { env: SECRETS });
    expect(r.code).toBe(0);
    expect(out(r)).toContain('"GITHUB_TOKEN=***"');
    for (const value of Object.values(SECRETS)) {
      expect(out(r)).not.toContain(value);
      expect(r.stderr).not.toContain(value);
    }
  }, 60_000);
});

// --- network ------------------------------------------------------------------------

describe("hardened by default: --network none", () => {
  test("only lo exists and a connection attempt fails", async () => {
    const script = "ls /sys/class/net; nc -w 2 1.1.1.1 80 </dev/null; echo nc=$?";
    const r = await run(["--network", "none", "sh", "-c", script]);
    expect(r.code).toBe(0);
    const lines = out(r).split("\n").filter(Boolean);
    expect(lines.filter((l) => !l.startsWith("nc="))).toEqual(["lo"]);
    expect(lines).not.toContain("nc=0");
    expect(r.stderr).toMatch(/Network is unreachable|can't connect/);
  }, 60_000);

  test("the control: the default network has an interface besides lo", async () => {
    const r = await run(["ls", "/sys/class/net"]);
    expect(r.code).toBe(0);
    expect(out(r).split("\n").filter((l) => l && l !== "lo").length).toBeGreaterThan(0);
  }, 60_000);
});

// --- custom seccomp -----------------------------------------------------------------

describe("hardened by default: --seccomp PATH", () => {
  test("a broken profile exits 125 and names the file, before any container exists", async () => {
    const broken = join(work, "broken-profile.json");
    writeFileSync(broken, '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [');
    const r = await run(["--seccomp", broken, "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(broken);
    const invalid = join(work, "invalid-profile.json");
    writeFileSync(invalid, JSON.stringify({ defaultAction: "SCMP_ACT_MAYBE" }));
    const r2 = await run(["--seccomp", invalid, "true"]);
    expect(r2.code).toBe(125);
    expect(r2.stderr).toContain(invalid);
    expect(await leftovers()).toBe(0);
  }, 60_000);

  test("a valid custom profile is applied: our default without mkdir refuses mkdir, and the dry run says custom", async () => {
    const profile = defaultSeccompProfile();
    let removed = 0;
    for (const rule of profile.syscalls ?? []) {
      if (rule.action !== "SCMP_ACT_ALLOW" || !rule.names) continue;
      const kept = rule.names.filter((n) => n !== "mkdir" && n !== "mkdirat");
      removed += rule.names.length - kept.length;
      rule.names = kept;
    }
    expect(removed).toBeGreaterThan(0);
    const path = join(work, "no-mkdir-profile.json");
    writeFileSync(path, JSON.stringify(profile, null, 2));

    const script = "mkdir /tmp/d 2>&1; echo mkdir=$?; exec probe all >/dev/null";
    const custom = await run(["--seccomp", path, "sh", "-c", script]);
    expect(out(custom)).toContain("mkdir=1");
    expect(out(custom)).toContain("Operation not permitted");
    // Everything our default refuses is still refused.
    expect(custom.code).toBe(0);

    const standard = await run(["sh", "-c", script]);
    expect(out(standard)).toBe("mkdir=0\n");

    const dry = await run(["--dry-run", "--seccomp", path, "true"]);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(out(dry));
    expect(plan.security.seccomp).toBe("custom");
    const dryDefault = JSON.parse(out(await run(["--dry-run", "true"])));
    expect(dryDefault.security.seccomp).toBe("default");
    expect(plan.security.seccompSha256).not.toBe(dryDefault.security.seccompSha256);
  }, 90_000);
});

// --- engine check (runc and CVE-2024-21626) ----------------------------------------

/**
 * A stand-in engine: a unix socket that forwards every request to the real
 * engine (attach included, as raw bytes after the upgrade), except that GET
 * /info is edited. It records each request line.
 */
async function engineWithInfo(edit: (info: Record<string, unknown>) => void): Promise<{ host: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "sandbox-fake-engine-"));
  const socketPath = join(dir, "engine.sock");
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const upstream = http.request({ socketPath: ENGINE_SOCKET, path: req.url, method: req.method, headers: req.headers }, (up) => {
      const headers = { ...up.headers };
      delete headers["transfer-encoding"];
      delete headers.connection;
      if (req.method === "GET" && /^(\/v[\d.]+)?\/info$/.test((req.url ?? "").split("?")[0] as string)) {
        const chunks: Buffer[] = [];
        up.on("data", (c: Buffer) => chunks.push(c));
        up.on("end", () => {
          const info = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          edit(info);
          const body = JSON.stringify(info);
          headers["content-length"] = String(Buffer.byteLength(body));
          res.writeHead(up.statusCode ?? 200, headers);
          res.end(body);
        });
        return;
      }
      res.writeHead(up.statusCode ?? 200, headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req, client: net.Socket, head: Buffer) => {
    requests.push(`${req.method} ${req.url}`);
    const upstream = net.connect({ path: ENGINE_SOCKET }, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    host: `unix://${socketPath}`,
    requests,
    close: async () => {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function engineWithRunc(runcVersion: string): ReturnType<typeof engineWithInfo> {
  return engineWithInfo((info) => {
    info.DefaultRuntime = "runc";
    info.RuncCommit = { ID: runcVersion, Expected: runcVersion };
  });
}

describe("hardened by default: engine check", () => {
  test("an engine that reports no seccomp: refused with 125, the container never starts and is gone", async () => {
    const engine = await engineWithInfo((info) => {
      info.SecurityOptions = ((info.SecurityOptions as string[] | undefined) ?? []).filter((o) => !o.includes("seccomp"));
    });
    const ws = mkdtempSync(join(tmpdir(), "sandbox-preflight-"));
    try {
      const r = await run(["sh", "-c", "touch /work/ran"], { cwd: ws, env: { DOCKER_HOST: engine.host } });
      expect(r.code).toBe(125);
      expect(r.stderr).toContain("seccomp");
      expect(r.stderr).toContain("--insecure-allow seccomp");
      expect(existsSync(join(ws, "ran"))).toBe(false);
      expect(engine.requests.some((line) => /\/containers\/[^/]+\/(start|attach)/.test(line))).toBe(false);
      expect(await leftovers(`io.sandbox.workspace=${ws}`)).toBe(0);
    } finally {
      await engine.close();
      rmSync(ws, { recursive: true, force: true });
    }
  }, 60_000);

  test("an engine with runc older than 1.1.12 gets one warning naming CVE-2024-21626, and the run still works", async () => {
    const engine = await engineWithRunc("v1.1.11-0-g4bccb38");
    try {
      const r = await run(["sh", "-c", "echo ran"], { env: { DOCKER_HOST: engine.host } });
      expect(r.code).toBe(0);
      expect(out(r)).toBe("ran\n");
      expect(r.stderr.match(/CVE-2024-21626/g)?.length).toBe(1);
      expect(r.stderr).toContain("runc 1.1.11");
      expect(await leftovers()).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test("Debian's patched 1.1.5+ds1-1+deb12u1 and an upstream 1.1.12 get no warning", async () => {
    for (const version of ["1.1.5+ds1-1+deb12u1", "v1.1.12-0-g51d5e94"]) {
      const engine = await engineWithRunc(version);
      try {
        const r = await run(["sh", "-c", "echo ran"], { env: { DOCKER_HOST: engine.host } });
        expect({ version, code: r.code, stdout: out(r) }).toEqual({ version, code: 0, stdout: "ran\n" });
        expect(r.stderr).not.toContain("CVE-2024-21626");
      } finally {
        await engine.close();
      }
    }
  }, 60_000);
});
