/** One complete RunSettings for unit tests; each test overrides what it is about. */
import type { RunSettings } from "../../src/core/plan.ts";

export function testSettings(over: Partial<RunSettings> = {}): RunSettings {
  return {
    image: "img:1",
    imageRule: "--image flag",
    agent: "generic",
    entrypoint: undefined,
    timeoutMs: 30 * 60_000,
    network: "bridge",
    remove: true,
    memoryBytes: 4 * 1024 ** 3,
    cpus: undefined,
    pids: 512,
    seccomp: { kind: "default", json: '{"defaultAction":"SCMP_ACT_ERRNO"}', hash: "abc" },
    readOnlyRoot: true,
    readOnlyWorkspace: false,
    user: undefined,
    capAdd: [],
    envAllow: [],
    envBlock: [],
    envFlags: [],
    envValues: {},
    workspaceTarget: "/work",
    pull: "missing",
    name: undefined,
    extraMounts: [],
    setup: [],
    ...over,
  };
}
