import { readFileSync } from "node:fs";

/**
 * A running container's first process, seen from this host, for the one
 * case where an engine API round trip is too slow: the guard stopping a run
 * whose mask was just detached (cli/execute-run.ts). Found only when the
 * engine shares this host's process table: the pid's cgroup must name the
 * container (Docker Desktop's and remote engines' pids name processes
 * elsewhere, and are never signalled). Its start time is kept, so a pid the
 * kernel reused later is never signalled either.
 */
export interface HostProcess {
  pid: number;
  startTime: string;
}

export type Kill = (pid: number, signal: "SIGKILL") => void;

/** Field 22 of /proc/<pid>/stat (after the parenthesised name, which may hold spaces). */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export function containerProcess(pid: number | undefined, containerId: string): HostProcess | undefined {
  if (!pid || pid <= 1 || !/^[0-9a-f]{64}$/.test(containerId)) return undefined;
  try {
    if (!readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(containerId)) return undefined;
  } catch {
    return undefined;
  }
  const time = startTime(pid);
  return time === undefined ? undefined : { pid, startTime: time };
}

/**
 * SIGKILL to the container's first process: the kernel then kills every
 * process in its pid namespace. False when it is not that process any more
 * or may not be signalled (another user's rootful engine): then the engine
 * API is the way.
 */
export function killHostProcess(process: HostProcess, kill: Kill): boolean {
  if (startTime(process.pid) !== process.startTime) return false;
  try {
    kill(process.pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}
