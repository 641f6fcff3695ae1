import { describe, expect, test } from "bun:test";
import { describeRefusal, REFUSALS, refusalLine, requestName, type Refusal } from "../../src/core/engine-refusal.ts";
import { EngineError } from "../../src/core/errors.ts";
import { renderError } from "../../src/cli/errors.ts";
import { checkCpus } from "../../src/core/preflight.ts";
import { DOCKER, plan } from "../helpers/preflight-fixtures.ts";

const ID = "6cea87d4bc5129e31d65b23e06bc3f9c84f8fc096202d3279e1499fcd80da660";

const refusal = (over: Partial<Refusal>): Refusal => ({
  method: "POST",
  path: `/containers/${ID}/start`,
  status: 500,
  text: "",
  flavor: "docker",
  address: "unix:///var/run/docker.sock",
  ...over,
});

/** What the user sees for a refusal: cli/errors.ts's rendering of the EngineError the client makes. */
function shown(r: Refusal): string[] {
  const { text, exitCode } = renderError(new EngineError(refusalLine(r), { statusCode: r.status, refusal: r }), false);
  expect(exitCode).toBe(125);
  return text.trimEnd().split("\n");
}

describe("an engine's refusal in sandbox's words (the engines' real texts)", () => {
  test("network not found: Docker at start, Podman at create; the fix names the engine's own CLI", () => {
    expect(shown(refusal({ text: "network nosuchnet not found" }))).toEqual([
      `sandbox: network "nosuchnet" does not exist; create it with 'docker network create nosuchnet' or choose another with --network`,
      "  engine: network nosuchnet not found",
    ]);
    const podman = refusal({ path: "/containers/create", status: 404, flavor: "podman", text: "container create: unable to find network with name or ID nosuchnet: network not found" });
    expect(describeRefusal(podman)).toEqual({
      id: "network-not-found",
      message: `network "nosuchnet" does not exist; create it with 'podman network create nosuchnet' or choose another with --network`,
      engine: "container create: unable to find network with name or ID nosuchnet: network not found",
    });
  });

  test("--cpus above the host's", () => {
    expect(shown(refusal({ path: "/containers/create", text: "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available" }))).toEqual([
      "sandbox: --cpus asks for more CPUs than the engine has (2); choose --cpus 2 or less",
      "  engine: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
    ]);
    expect(describeRefusal(refusal({ text: "Range of CPUs is from 0.01 to 1.00, as there are only 1 CPU available" })).message).toContain("(1); choose --cpus 1 or less");
  });

  test("an unknown user or group (when the container starts; on Podman at attach)", () => {
    expect(shown(refusal({ text: "unable to find user abc: no matching entries in passwd file" }))[0]).toBe(
      `sandbox: user "abc" does not exist in the image; give a numeric --user UID[:GID], or a name the image's /etc/passwd has`,
    );
    const podman = refusal({ path: `/containers/${ID}/attach`, flavor: "podman", text: `preparing container ${ID} for attach: unable to find user abc: no matching entries in passwd file` });
    expect(describeRefusal(podman).id).toBe("unknown-user");
    expect(describeRefusal(refusal({ text: "unable to find group staff: no matching entries in group file" })).message).toStartWith(`group "staff" does not exist in the image`);
  });

  test("an image the engine does not have", () => {
    expect(describeRefusal(refusal({ path: "/containers/create", status: 404, text: "No such image: nosuch/x:1" })).message).toBe(
      `image "nosuch/x:1" is not on this engine; pull it, load it with 'sandbox image load FILE', or choose another with --image`,
    );
    expect(describeRefusal(refusal({ flavor: "podman", text: "nosuch/x:1: image not known" })).id).toBe("image-not-found");
  });

  test("a name in use, a memory limit below the minimum, a limit the runtime may not raise", () => {
    expect(describeRefusal(refusal({ status: 409, text: 'Conflict. The container name "/web" is already in use by container "abc". You have to remove (or rename) that container to be able to reuse that name.' })).message).toBe(
      `a container named "web" already exists; choose another --name, or remove it ('docker rm web')`,
    );
    expect(describeRefusal(refusal({ text: "Minimum memory limit allowed is 6MB" })).message).toContain("--memory is below the engine's minimum of 6MB");
    const runc = describeRefusal(refusal({ text: "runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 6: operation not permitted: OCI permission denied" }));
    expect(runc.id).toBe("rlimit");
    expect(runc.message).toContain("nproc limit");
    expect(describeRefusal(refusal({ text: "crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted: OCI permission denied" })).message).toContain("nofile limit");
  });

  test("/_ping answered with an error, or without an API version: the address is not an engine", () => {
    const ping = refusal({ method: "GET", path: "/_ping", status: 404, text: "", address: "tcp://127.0.0.1:8080" });
    expect(shown(ping)).toEqual([
      "sandbox: tcp://127.0.0.1:8080 does not look like a Docker or Podman engine (GET /_ping answered HTTP 404); point DOCKER_HOST or --host at the engine's API socket or port",
      "  engine: no message (HTTP 404)",
    ]);
    expect(describeRefusal({ ...ping, status: 200, text: "the answer has no Api-Version header" }).message).toContain("answered HTTP 200 without the Api-Version header engines send");
  });

  test("anything else: the request in words, never a sentence ending in a bare colon, ids cut to 12", () => {
    const lines = shown(refusal({ text: "" }));
    expect(lines).toEqual(["sandbox: the engine refused to start container 6cea87d4bc51 (HTTP 500)", "  engine: no message (HTTP 500)"]);
    expect(describeRefusal(refusal({ method: "DELETE", path: `/containers/${ID}`, status: 409, text: "busy" })).message).toBe("the engine refused DELETE /containers/6cea87d4bc51 (HTTP 409)");
    for (const r of [refusal({ text: "" }), refusal({ method: "GET", path: "/x", status: undefined, text: "" })]) {
      expect(refusalLine(r)).not.toMatch(/:\s*$/);
      for (const line of shown(r)) expect(line).not.toMatch(/:\s*$/);
    }
    expect(requestName("POST", "/containers/create")).toBe("to create the container");
    expect(requestName("POST", `/containers/${ID}/attach`)).toBe("to attach to container 6cea87d4bc51");
  });

  test("every rule has a distinct id", () => {
    const ids = REFUSALS.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("--cpus beyond the engine's CPUs (Podman would take it)", () => {
  test("refused in the words Docker's refusal is put in; at or under the engine's count, or an engine that does not say, passes", () => {
    expect(() => checkCpus({ ...DOCKER, NCPU: 2 }, plan({ cpus: 999 }))).toThrow("--cpus asks for more CPUs than the engine has (2); choose --cpus 2 or less");
    expect(() => checkCpus({ ...DOCKER, NCPU: 2 }, plan({ cpus: 2 }))).not.toThrow();
    expect(() => checkCpus({ ...DOCKER, NCPU: 2 }, plan())).not.toThrow();
    expect(() => checkCpus(DOCKER, plan({ cpus: 999 }))).not.toThrow();
  });
});
