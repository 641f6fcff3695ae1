import { expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { containerProcess, killHostProcess } from "../../src/engine/host-process.ts";

const ID = "a".repeat(64);

test("a process whose cgroup does not name the container is never taken for it", () => {
  expect(containerProcess(process.pid, ID)).toBeUndefined();
  expect(containerProcess(undefined, ID)).toBeUndefined();
  expect(containerProcess(1, ID)).toBeUndefined();
  expect(containerProcess(process.pid, "not-an-id")).toBeUndefined();
});

test("a pid whose start time changed (reused) is not signalled; the recorded one is", async () => {
  const child = spawn("sleep", ["30"]);
  const pid = child.pid!;
  const signals: number[] = [];
  const kill = (p: number, s: "SIGKILL") => (signals.push(p), process.kill(p, s));
  expect(killHostProcess({ pid, startTime: "0" }, kill)).toBe(false);
  expect(signals).toEqual([]);
  const stat = await Bun.file(`/proc/${pid}/stat`).text();
  const startTime = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
  const exited = new Promise<string | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  expect(killHostProcess({ pid, startTime }, kill)).toBe(true);
  expect(await exited).toBe("SIGKILL");
});
