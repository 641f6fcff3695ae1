/**
 * A test CA and a server certificate it signed, made with openssl: the
 * stand-in for a real API host's certificate chain in the credential proxy's
 * tests. Independent of the proxy's own CA code, so a bug there cannot make
 * both ends agree.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SignedServer {
  /** The test CA's certificate: what a client must trust. */
  caPem: string;
  key: string;
  cert: string;
}

export function makeSignedServer(names: string[], caName: string): SignedServer {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-upstream-ca-"));
  const at = (f: string) => join(dir, f);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    execFileSync("openssl", ["req", "-x509", ...ec, "-days", "1", "-subj", `/CN=${caName}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", "-keyout", at("ca.key"), "-out", at("ca.pem")], { stdio: "ignore" });
    execFileSync("openssl", ["req", ...ec, "-subj", `/CN=${names[0]}`, "-keyout", at("leaf.key"), "-out", at("leaf.csr")], { stdio: "ignore" });
    writeFileSync(at("ext.cnf"), `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n`);
    execFileSync("openssl", ["x509", "-req", "-in", at("leaf.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", at("ext.cnf"), "-out", at("leaf.pem")], { stdio: "ignore" });
    return { caPem: readFileSync(at("ca.pem"), "utf8"), key: readFileSync(at("leaf.key"), "utf8"), cert: readFileSync(at("leaf.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Leaves a file for a client to read (curl's --cacert) and returns its path. */
export function writePem(dir: string, name: string, pem: string): string {
  const path = join(dir, name);
  writeFileSync(path, pem);
  return path;
}
