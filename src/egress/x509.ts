import { createHash } from "node:crypto";
import { ascii, bitString, boolean, explicit, implicitConstructed, implicitPrimitive, namedBits, octetString, oid, sequence, set, smallInteger, time, unsignedInteger, utf8String, type Der } from "./der.ts";

/**
 * The two X.509 v3 certificates the credential proxy makes (RFC 5280): the
 * run's CA, and a server ("leaf") certificate per intercepted host. Only the
 * structure is built here; the signature is computed by whoever holds the
 * key (run-ca.ts), so this file never sees a private key.
 *
 * ECDSA P-256 with SHA-256 throughout: every TLS client in use accepts it,
 * keys are made in well under a millisecond, and node:crypto signs in DER
 * (ECDSA-Sig-Value) form, which is what the certificate carries.
 */

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  nameConstraints: "2.5.29.30",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

/** keyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** Longest commonName X.520 allows (ub-common-name); longer host names go in the SAN only. */
const MAX_COMMON_NAME = 64;

export interface DistinguishedName {
  commonName?: string;
  organization?: string;
}

/** One subjectAltName / name-constraint entry: a DNS name, or an IP address (4 or 16 bytes). */
export type SubjectName = { dns: string } | { ip: Uint8Array };

export interface CertificateFields {
  /** Positive, at most 20 bytes (RFC 5280 §4.1.2.2). */
  serial: Uint8Array;
  issuer: DistinguishedName;
  subject: DistinguishedName;
  notBefore: Date;
  notAfter: Date;
  /** The subject's public key as SubjectPublicKeyInfo DER (KeyObject.export({type: "spki", format: "der"})). */
  publicKey: Uint8Array;
  extensions: Der[];
}

/** Signs the DER of a TBSCertificate; returns an ECDSA-Sig-Value in DER. */
export type Signer = (tbs: Uint8Array) => Uint8Array;

/** The certificate in DER: TBSCertificate, algorithm, signature over the TBSCertificate. */
export function buildCertificate(fields: CertificateFields, sign: Signer): Uint8Array {
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(fields.serial),
    algorithm,
    encodeName(fields.issuer),
    sequence(time(fields.notBefore), time(fields.notAfter)),
    encodeName(fields.subject),
    fields.publicKey,
    explicit(3, sequence(...fields.extensions)),
  );
  return sequence(tbs, algorithm, bitString(sign(tbs)));
}

function encodeName(name: DistinguishedName): Der {
  const rdns: Der[] = [];
  if (name.organization !== undefined) rdns.push(set(sequence(oid(OID.organization), utf8String(name.organization))));
  if (name.commonName !== undefined) rdns.push(set(sequence(oid(OID.commonName), utf8String(name.commonName))));
  return sequence(...rdns);
}

/**
 * A key identifier: the first 160 bits of SHA-256 over the public key
 * (RFC 7093 §2 allows any such hash); links a leaf to its CA's key.
 */
export function keyIdentifier(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(publicKey).digest().subarray(0, 20));
}

function extension(id: string, critical: boolean, value: Der): Der {
  // DER leaves out a BOOLEAN equal to its DEFAULT (FALSE).
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

function generalName(name: SubjectName): Der {
  return "dns" in name ? implicitPrimitive(2, ascii(name.dns)) : implicitPrimitive(7, name.ip);
}

/**
 * The CA's extensions. `permitted`, when given, becomes a critical
 * nameConstraints extension: the CA can vouch only for those DNS names (and
 * names below them) and for no IP address at all, so even a client that
 * trusts it cannot be shown a certificate from it for any other site.
 */
export function caExtensions(publicKey: Uint8Array, permitted?: readonly string[]): Der[] {
  const out = [
    extension(OID.basicConstraints, true, sequence(boolean(true), smallInteger(0))), // CA, no CA below it
    extension(OID.keyUsage, true, namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(publicKey))),
  ];
  if (permitted !== undefined) {
    const subtree = (name: SubjectName) => sequence(generalName(name));
    const allV4 = { ip: new Uint8Array(8) }; // 0.0.0.0/0: address and mask
    const allV6 = { ip: new Uint8Array(32) }; // ::/0
    out.push(
      extension(
        OID.nameConstraints,
        true,
        sequence(
          ...(permitted.length > 0 ? [implicitConstructed(0, ...permitted.map((dns) => subtree({ dns })))] : []),
          implicitConstructed(1, subtree(allV4), subtree(allV6)),
        ),
      ),
    );
  }
  return out;
}

/** A TLS server certificate's extensions for one name, issued by the CA with `issuerPublicKey`. */
export function leafExtensions(publicKey: Uint8Array, issuerPublicKey: Uint8Array, name: SubjectName, subjectEmpty: boolean): Der[] {
  return [
    extension(OID.basicConstraints, true, sequence()),
    extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature])),
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
    // With an empty subject the SAN is the only name, and RFC 5280 §4.2.1.6 wants it critical.
    extension(OID.subjectAltName, subjectEmpty, sequence(generalName(name))),
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(publicKey))),
    extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(issuerPublicKey)))),
  ];
}

/** The leaf's subject: the host as commonName when it fits, else empty (the SAN names it). */
export function leafSubject(host: string): DistinguishedName {
  return host.length <= MAX_COMMON_NAME ? { commonName: host } : {};
}
