import { connect, isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { TlsConnectOptions } from "../kernel/tls.js";

/**
 * "Can this box reach that service at all": a TCP connect with a short timeout, nothing more.
 * Used by `lanekeeper selftest` for the platform and the MQTT broker; an installer on site
 * needs to tell a wrong address or a closed firewall from a wrong key.
 */

export interface Endpoint {
  host: string;
  port: number;
}

const defaultPorts: Record<string, number> = {
  "http:": 80,
  "https:": 443,
  "ws:": 80,
  "wss:": 443,
  "mqtt:": 1883,
  "tcp:": 1883,
  "mqtts:": 8883,
  "ssl:": 8883,
};

/** host and port of a URL, with the scheme's default port. */
export function endpointFromUrl(url: string): Endpoint | { error: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { error: `${JSON.stringify(url)} is not a URL` };
  }
  const port = parsed.port ? Number(parsed.port) : defaultPorts[parsed.protocol];
  if (port === undefined) return { error: `no default port for ${parsed.protocol}// in ${url}` };
  // URL keeps IPv6 literals in brackets; net.connect wants them bare.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) return { error: `${url} has no host` };
  return { host, port };
}

export interface TcpProbeResult {
  ok: boolean;
  host: string;
  port: number;
  /** Time to connect (or to fail). */
  ms: number;
  /** Errno code: ECONNREFUSED, ENOTFOUND, EHOSTUNREACH, ETIMEDOUT (ours)... */
  code?: string;
  error?: string;
}

const explanations: Record<string, string> = {
  ECONNREFUSED: "connection refused (nothing listens there, or a firewall rejects)",
  ENOTFOUND: "host name not found (DNS)",
  EAI_AGAIN: "DNS lookup failed (no network or no DNS server)",
  EHOSTUNREACH: "host unreachable (routing)",
  ENETUNREACH: "network unreachable (no route; is the cable in?)",
  ETIMEDOUT: "no answer before the timeout (a firewall dropping packets, or the wrong address)",
};

export function tcpProbe(endpoint: Endpoint, timeoutMs: number): Promise<TcpProbeResult> {
  const begun = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host: endpoint.host, port: endpoint.port });
    let done = false;
    const finish = (result: Omit<TcpProbeResult, "host" | "port" | "ms">): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ host: endpoint.host, port: endpoint.port, ms: Math.round(performance.now() - begun), ...result });
    };
    const timer = setTimeout(() => finish({ ok: false, code: "ETIMEDOUT", error: explanations.ETIMEDOUT! }), timeoutMs);
    socket.once("connect", () => finish({ ok: true }));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      const code = error.code ?? "EUNKNOWN";
      finish({ ok: false, code, error: explanations[code] ?? error.message });
    });
  });
}

export interface TlsProbeResult {
  ok: boolean;
  ms: number;
  /** The server certificate's subject CN and issuer CN, when the handshake got that far. */
  subject?: string;
  issuer?: string;
  validTo?: string;
  code?: string;
  error?: string;
}

/**
 * A TLS handshake with `endpoint`, verified as a real call would be (`connect`: CA list and
 * client certificate); `servername` is the URL's host name.
 */
export function tlsProbe(endpoint: Endpoint, servername: string, connectOptions: TlsConnectOptions | undefined, timeoutMs: number): Promise<TlsProbeResult> {
  const begun = performance.now();
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: endpoint.host, port: endpoint.port, ...(isIP(servername) ? {} : { servername }), ...connectOptions });
    let done = false;
    const finish = (result: Omit<TlsProbeResult, "ms">): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ms: Math.round(performance.now() - begun), ...result });
    };
    const timer = setTimeout(() => finish({ ok: false, code: "ETIMEDOUT", error: "no TLS handshake before the timeout" }), timeoutMs);
    socket.once("secureConnect", () => {
      const peer = socket.getPeerCertificate();
      const names = { subject: String(peer.subject?.CN ?? "?"), issuer: String(peer.issuer?.CN ?? "?"), validTo: peer.valid_to };
      // The server's certificate is verified (CA and host name) by now. Under TLS 1.3 a server
      // that wanted a client certificate says so only after this point: a short grace for its alert.
      const grace = setTimeout(() => finish({ ok: true, ...names }), Math.min(300, timeoutMs));
      socket.once("close", () => clearTimeout(grace));
    });
    socket.once("error", (error: NodeJS.ErrnoException) => finish({ ok: false, code: error.code ?? "EUNKNOWN", error: error.message }));
    socket.once("close", () => finish({ ok: false, code: "ECONNRESET", error: "the server closed the connection during the handshake" }));
  });
}
