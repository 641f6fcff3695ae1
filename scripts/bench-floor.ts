/**
 * The floor of `sandbox run true` (`bun run bench`): the docker run sequence
 * through sandbox's own engine door and nothing else. It connects and pings
 * as sandbox does, then creates a container with a plain body (no config,
 * plan, guard, seccomp or identity) that the engine removes when it exits,
 * waits for that removal, and starts it. It does not attach, which docker
 * run does, so it is a lower bound. Compiled as sandbox
 * is (scripts/build.ts), it shows what the runtime and docker-modem cost
 * before sandbox does any work of its own.
 *   dist/bench-floor IMAGE
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { connectEngine } from "../src/engine/connect.ts";
import { createContainer, startContainer, waitForRemoval } from "../src/engine/containers.ts";
import { discoverEngine } from "../src/engine/discovery.ts";

async function floor(image: string): Promise<number> {
  const { engine } = await connectEngine(
    discoverEngine({
      hostFlag: undefined,
      env: process.env,
      homeDir: process.env.HOME ?? homedir(),
      readFile: (path) => (existsSync(path) ? readFileSync(path) : undefined),
      exists: existsSync,
      platform: process.platform,
    }),
  );
  // As docker run --rm (and sandbox): the engine removes the container, and the exit comes with the removal.
  const id = await createContainer(engine, undefined, { Image: image, Cmd: ["true"], HostConfig: { AutoRemove: true } } as never);
  const removal = await waitForRemoval(engine, id);
  await startContainer(engine, id);
  return (await removal.exit).StatusCode;
}

// Top-level await is not allowed in a bytecode build.
void floor(process.argv[2] ?? "sandbox-test/busybox:1").then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`bench-floor: ${err.message}`);
    process.exit(125);
  },
);
