/**
 * Any uid has a name and a home: the run's user is added to the image's
 * /etc/passwd and /etc/group (mounted read-only), $USER and $LOGNAME name it,
 * its home is the writable $HOME, and /var/tmp is writable like /tmp.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSandbox, TEST_IMAGE } from "../helpers/sandbox.ts";

const work = mkdtempSync(join(tmpdir(), "sandbox-identity-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function inside(user: string, script: string): Promise<{ code: number | null; out: string; err: string }> {
  const r = await runSandbox(["run", "--user", user, "--image", TEST_IMAGE, "sh", "-c", script], { cwd: work });
  return { code: r.code, out: r.stdout.toString(), err: r.stderr };
}

describe("the run's user has a name and a home", () => {
  test("a uid the image does not know gets an entry (and its group), named sandbox, home /home/sandbox", async () => {
    const r = await inside("1001:1002", 'whoami; id -un; id -gn; echo "$USER $LOGNAME $HOME"; grep "^sandbox:" /etc/passwd; grep -c "^nobody:" /etc/passwd');
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out.split("\n")).toEqual(["sandbox", "sandbox", "sandbox", "sandbox sandbox /home/sandbox", "sandbox:x:1001:1002:sandbox:/home/sandbox:/bin/sh", "1", ""]);
  });

  test("a uid the image knows keeps its name; its home becomes the writable $HOME", async () => {
    const r = await inside("0:0", 'whoami; echo "$USER"; grep "^root:" /etc/passwd; touch ~/x && echo home-writable');
    expect(r.code).toBe(0);
    expect(r.out).toBe("root\nroot\nroot:x:0:0:root:/home/sandbox:/bin/sh\nhome-writable\n");
  });

  test("the accounts cannot be changed from inside; /var/tmp is writable", async () => {
    // As root inside, who owns the file: only the read-only mount stops the write.
    const r = await inside("0:0", "echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd; echo rc=$?; touch /var/tmp/x && echo var-tmp-ok");
    expect(r.out).toContain("rc=1");
    expect(r.out).toContain("var-tmp-ok");
    expect(r.err).toMatch(/Read-only file system/);
  });
});
