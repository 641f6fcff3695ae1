import { generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { normalizeHostName } from "./allowlist.ts";
import { formatIp, parseIp } from "./address-policy.ts";
import { pem } from "./der.ts";
import { buildCertificate, caExtensions, leafExtensions, leafSubject, type SubjectName } from "./x509.ts";

/**
 * The run's own certificate authority, for the credential proxy: the
 * container trusts its certificate (mounted, public), the proxy presents
 * leaf certificates it signs for the hosts whose requests get credentials.
 *
 * Made fresh for every run, in memory: the private keys are KeyObjects in
 * this process and are never exported, written to disk or sent anywhere.
 * When the run ends they are gone, and the certificate is only valid for the
 * run's lifetime anyway, so a copy of it left in the container vouches for
 * nothing afterwards.
 */

export interface RunCaOptions {
  /** How long the CA and every leaf stay valid from now: the run's time limit plus a margin. */
  lifetimeMs: number;
  /**
   * Names the CA may vouch for, written into a critical nameConstraints
   * extension (each name and everything below it; no IP address). Absent:
   * unconstrained. Pass the credential rules' host bases.
   */
  permittedNames?: readonly string[];
  /** Shown in the CA's common name, e.g. the container's name, to tell runs apart in a trust store. */
  label?: string;
  now?: Date;
}

/** A leaf certificate, and a TLS context that serves it with its key (the key itself is not handed out). */
export interface Leaf {
  host: string;
  certificatePem: string;
  secureContext: SecureContext;
}

/** Clocks of host and container are the same kernel's; the margin covers a leaf minted right at a second's edge. */
const BACKDATE_MS = 5 * 60_000;

export class RunCa {
  readonly certificatePem: string;
  readonly certificateDer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly permittedNames: readonly string[] | undefined;
  readonly #caKey: KeyObject;
  readonly #caPublicKey: Uint8Array;
  readonly #commonName: string;
  // One key pair serves every leaf of the run: minting is then one signature, and the key never leaves this object either.
  // As PEM text: Bun's createSecureContext takes no KeyObject (ERR_INVALID_ARG_TYPE). Held here, never handed out.
  readonly #leafKeyPem: string;
  readonly #leafPublicKey: Uint8Array;
  readonly #leaves = new Map<string, Leaf>();

  private constructor(options: RunCaOptions) {
    if (!(options.lifetimeMs > 0)) throw new RangeError("the CA's lifetime must be positive");
    const now = options.now ?? new Date();
    this.notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
    this.notAfter = new Date(Math.ceil((now.getTime() + options.lifetimeMs) / 1000) * 1000);
    this.permittedNames = options.permittedNames?.map((name) => {
      const host = normalizeHostName(name);
      if (!host) throw new RangeError(`not a DNS name: ${name}`);
      return host;
    });
    const ca = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    this.#caKey = ca.privateKey;
    this.#caPublicKey = new Uint8Array(ca.publicKey.export({ type: "spki", format: "der" }));
    const leaf = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    this.#leafKeyPem = leaf.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    this.#leafPublicKey = new Uint8Array(leaf.publicKey.export({ type: "spki", format: "der" }));
    this.#commonName = `sandbox run CA${options.label ? ` ${options.label}` : ""} ${randomBytes(4).toString("hex")}`.slice(0, 64);
    this.certificateDer = buildCertificate(
      {
        serial: serialNumber(),
        issuer: { organization: "sandbox", commonName: this.#commonName },
        subject: { organization: "sandbox", commonName: this.#commonName },
        notBefore: this.notBefore,
        notAfter: this.notAfter,
        publicKey: this.#caPublicKey,
        extensions: caExtensions(this.#caPublicKey, this.permittedNames),
      },
      this.#sign,
    );
    this.certificatePem = pem("CERTIFICATE", this.certificateDer);
  }

  static create(options: RunCaOptions): RunCa {
    return new RunCa(options);
  }

  /** Whether the CA may vouch for `host` (a normalised name or IP literal). */
  covers(host: string): boolean {
    const name = subjectName(host);
    if (!name) return false;
    if (this.permittedNames === undefined) return true;
    if (!("dns" in name)) return false;
    return this.permittedNames.some((base) => name.dns === base || name.dns.endsWith(`.${base}`));
  }

  /** The leaf for `host`, minted on first use and kept for the run. */
  leaf(host: string): Leaf {
    const name = subjectName(host);
    if (!name || !this.covers(host)) throw new RangeError(`the run's CA does not vouch for ${host}`);
    const key = "dns" in name ? name.dns : formatIp(name.ip);
    const cached = this.#leaves.get(key);
    if (cached) return cached;
    const subject = "dns" in name ? leafSubject(name.dns) : {};
    const der = buildCertificate(
      {
        serial: serialNumber(),
        issuer: { organization: "sandbox", commonName: this.#commonName },
        subject,
        notBefore: this.notBefore,
        notAfter: this.notAfter,
        publicKey: this.#leafPublicKey,
        extensions: leafExtensions(this.#leafPublicKey, this.#caPublicKey, name, subject.commonName === undefined),
      },
      this.#sign,
    );
    const certificatePem = pem("CERTIFICATE", der);
    const secureContext = createSecureContext({ key: this.#leafKeyPem, cert: certificatePem, minVersion: "TLSv1.2" });
    const leaf: Leaf = { host: key, certificatePem, secureContext };
    this.#leaves.set(key, leaf);
    return leaf;
  }

  readonly #sign = (tbs: Uint8Array): Uint8Array => new Uint8Array(sign("sha256", tbs, this.#caKey));
}

/** 16 random bytes, top bit clear: positive, unique, unpredictable (CA/B Forum asks for 64 random bits). */
function serialNumber(): Uint8Array {
  const bytes = new Uint8Array(randomBytes(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes;
}

function subjectName(host: string): SubjectName | undefined {
  const ip = parseIp(host);
  if (ip) return { ip };
  const dns = normalizeHostName(host);
  return dns ? { dns } : undefined;
}
