import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";

/**
 * TLS failures no retry mends: the server's certificate does not chain to a trusted CA or does
 * not name the host. An expired or not-yet-valid certificate is not among them: on a box
 * without a real-time clock it is often the box's date that is wrong until NTP has set it.
 */
const untrustedCertificateCodes: ReadonlySet<string> = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

/** The error's code when it says the server's certificate is not trusted, else undefined. */
export function untrustedCertificateCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && untrustedCertificateCodes.has(code) ? code : undefined;
}

/** Whether `text` holds at least one PEM certificate. */
export function hasPemCertificate(text: string): boolean {
  return text.includes("-----BEGIN CERTIFICATE-----");
}

/** The CA list for a TLS connection that trusts `pem`'s certificates besides the system's. */
export function caListWith(pem: string): string[] {
  return [...rootCertificates, pem];
}

/** Where a private CA and a client certificate for one link are configured (config field names). */
export interface TlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

export interface TlsConnectOptions {
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/**
 * Reads a link's TLS files at once (start-up, a few kilobytes). A file that cannot be used is
 * reported in `problems` (with the config path `${section}.caFile` etc.) and left out: the link
 * then runs with the system's CAs and no client certificate, and its TLS failures say why.
 */
export function readTlsFiles(section: string, files: TlsFiles): { connect: TlsConnectOptions | undefined; problems: string[] } {
  const problems: string[] = [];
  const read = (field: keyof TlsFiles): string | undefined => {
    const path = files[field];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      problems.push(`${section}.${field} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      return undefined;
    }
  };
  const connect: TlsConnectOptions = {};
  const ca = read("caFile");
  if (ca !== undefined) {
    if (hasPemCertificate(ca)) connect.ca = caListWith(ca);
    else problems.push(`${section}.caFile ${files.caFile}: no PEM certificate in it`);
  }
  const cert = read("certFile");
  const key = read("keyFile");
  if (cert !== undefined && key !== undefined) {
    if (!hasPemCertificate(cert)) problems.push(`${section}.certFile ${files.certFile}: no PEM certificate in it`);
    else if (!key.includes("PRIVATE KEY-----")) problems.push(`${section}.keyFile ${files.keyFile}: no PEM private key in it`);
    else {
      connect.cert = cert;
      connect.key = key;
    }
  }
  return { connect: Object.keys(connect).length > 0 ? connect : undefined, problems };
}
