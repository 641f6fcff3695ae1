/**
 * Poll `check` every `everyMs` until it gives a value (not undefined or
 * false); throw naming `what` after `timeoutMs`. A check that throws counts
 * as "not yet": what it polls is often mid-change (a path between a
 * container's rm and its ln, a container being removed). The latest error
 * is named in the timeout's message.
 */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let latest: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      latest = err;
    }
    if (Date.now() > end) {
      const why = latest === undefined ? "" : `; a check threw: ${(latest as Error).message ?? String(latest)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`, { cause: latest });
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
