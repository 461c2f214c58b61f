import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { basename } from "node:path";
import { list, type ReadEntry } from "tar";
import { sha256File } from "../update/bundle.js";

/**
 * What a rollout needs to know about a bundle file to write its jobs: version (from the
 * manifest inside), size and SHA-256. The box verifies the signature itself; the console only
 * describes the file.
 */
export async function describeBundle(file: string): Promise<{ version: string; size: number; sha256: string }> {
  let manifestText = "";
  await list({
    file,
    filter: (path) => path === "manifest.json" || path === "./manifest.json",
    onReadEntry: (entry: ReadEntry) => {
      entry.on("data", (chunk: Buffer) => {
        if (manifestText.length < 1_000_000) manifestText += chunk.toString("utf8");
      });
    },
  });
  let version: unknown;
  try {
    version = (JSON.parse(manifestText) as { version?: unknown }).version;
  } catch {
    throw new Error(`${file}: not a release bundle (no readable manifest.json)`);
  }
  if (typeof version !== "string" || version === "") throw new Error(`${file}: the manifest names no version`);
  const size = (await stat(file)).size;
  return { version, size, sha256: await sha256File(file) };
}

/**
 * `--serve <host:port>`: the bundle over plain HTTP from the operator's machine, with
 * `Range: bytes=<n>-` so a box resumes an interrupted download. Integrity comes from the job's
 * SHA-256 and the bundle's signature, not from the transport.
 */
export async function serveBundle(file: string, address: string): Promise<{ url: string; server: Server }> {
  const match = /^(.*):(\d+)$/.exec(address);
  if (!match) throw new Error(`--serve ${JSON.stringify(address)}: host:port, e.g. 0.0.0.0:8080`);
  const host = match[1] || "0.0.0.0";
  const name = basename(file);
  const { size } = await stat(file);
  const server = createServer((req, res) => {
    if (decodeURIComponent((req.url ?? "").slice(1)) !== name) {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    if (start >= size && size > 0) {
      res.writeHead(416, { "content-range": `bytes */${size}` }).end();
      return;
    }
    const headers: Record<string, string> = { "content-type": "application/octet-stream", "content-length": String(size - start), "accept-ranges": "bytes" };
    if (range) headers["content-range"] = `bytes ${start}-${size - 1}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    createReadStream(file, { start }).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(match[2]), host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // A wildcard address is no place to download from: boxes get the machine's name instead.
  const shownHost = host === "0.0.0.0" || host === "::" ? hostname() : host;
  return { url: `http://${shownHost}:${port}/${encodeURIComponent(name)}`, server };
}
