import type { MountSpec } from "./engine-api.ts";

/**
 * Corporate CAs in a run (`--ca-cert FILE`, `security.ca_certs`): networks
 * with a TLS-intercepting proxy break every package manager inside unless its
 * CA is trusted. The run gets one bundle, mounted read-only, and the
 * variables the common clients read point at it. Variables such as
 * SSL_CERT_FILE replace a client's whole trust store, so the bundle starts
 * with this machine's own system bundle: public sites stay trusted.
 */

export const CA_BUNDLE_TARGET = "/etc/sandbox/ca-bundle.pem";

/** Node (extra CAs, added to its own), OpenSSL-based tools, Python requests, git, pip, curl. */
export const CA_ENV_NAMES = ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "PIP_CERT", "CURL_CA_BUNDLE"] as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The certificates in a PEM file, one block each, line endings made "\n".
 * A bundle (the host's whole trust store) gives many: update-ca-certificates
 * reads one certificate per .crt file, so each becomes its own file.
 */
export function splitCertificates(text: string): string[] {
  return (text.replace(/\r\n?/g, "\n").match(PEM_CERT) ?? []).map((cert) => `${cert.trim()}\n`);
}

/** All files' certificates, each once, in order; an error names a file without one. */
export function collectCertificates(files: ReadonlyArray<{ path: string; text: string }>): { certificates: string[] } | { error: string } {
  const seen = new Set<string>();
  const certificates: string[] = [];
  for (const file of files) {
    const certs = splitCertificates(file.text);
    if (certs.length === 0) return { error: `${file.path} holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)` };
    for (const cert of certs) {
      const key = cert.replace(/\s+/g, "");
      if (seen.has(key)) continue;
      seen.add(key);
      certificates.push(cert);
    }
  }
  return { certificates };
}

export function caBundleRun(hostPath: string): { mount: MountSpec; env: Record<string, string> } {
  return {
    mount: { Type: "bind", Source: hostPath, Target: CA_BUNDLE_TARGET, ReadOnly: true },
    env: Object.fromEntries(CA_ENV_NAMES.map((name) => [name, CA_BUNDLE_TARGET])),
  };
}
