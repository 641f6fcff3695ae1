/** One complete RunSettings for unit tests, from the declared defaults; each test overrides what it is about. */
import { DEFAULTS } from "../../src/config/settings.ts";
import type { RunSettings } from "../../src/core/plan.ts";

export function testSettings(over: Partial<RunSettings> = {}): RunSettings {
  return {
    ...DEFAULTS,
    image: "img:1",
    imageRule: "--image flag",
    agent: "generic",
    entrypoint: undefined,
    seccomp: { kind: "default", json: '{"defaultAction":"SCMP_ACT_ERRNO"}', hash: "abc" },
    capAdd: [],
    envAllow: [],
    envBlock: [],
    envFlags: [],
    envValues: {},
    workspaceTarget: DEFAULTS.workspacePath,
    extraMounts: [],
    setup: [],
    egress: undefined,
    ...over,
  };
}
