/**
 * The egress integration test's destination servers, as a process of their
 * own so the test can start it inside another network namespace (a helper
 * container's, via nsenter): the servers then have an address the host's
 * proxy can reach but the sandboxed container has no route to.
 *
 *   TLS_KEY=... TLS_CERT=... bun test/egress/server-main.ts
 *
 * Prints one JSON line with the ports, then one per request served; exits
 * when stdin closes.
 */
import { readFileSync } from "node:fs";
import { startServers } from "./fixtures.ts";

const tls = { key: readFileSync(process.env.TLS_KEY ?? "", "utf8"), cert: readFileSync(process.env.TLS_CERT ?? "", "utf8") };
const servers = await startServers("0.0.0.0", tls);
const seen = servers.seen;
const push = seen.push.bind(seen);
seen.push = (...items) => {
  for (const item of items) process.stdout.write(`${JSON.stringify({ request: { method: item.method, url: item.url, host: item.host } })}\n`);
  return push(...items);
};
process.stdout.write(`${JSON.stringify({ httpPort: servers.httpPort, httpsPort: servers.httpsPort })}\n`);
process.stdin.resume();
process.stdin.on("end", () => void servers.close().then(() => process.exit(0)));
process.on("SIGTERM", () => void servers.close().then(() => process.exit(0)));
