import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { systemClock } from "../../../src/kernel/clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { downloadResumable, type DownloadOptions } from "../../../src/update/download.js";
import { redactUrl } from "../../../src/kernel/redact-url.js";
import { UpdateError } from "../../../src/update/errors.js";
import { BundleServer } from "../../helpers/bundle-server.js";
import { haveOpenssl, makeTestCerts } from "../../helpers/test-certs.js";
import { tempDir } from "../../helpers/update-fixtures.js";

// The resumable download against a real HTTP server on 127.0.0.1 (docs/mqtt.md §7).

const data = randomBytes(150_000);
let work: string;
let server: BundleServer;
let n = 0;

before(async () => {
  work = await tempDir("download");
  server = await new BundleServer().start();
  server.files.set("b.tar", data);
});
after(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});
beforeEach(() => {
  server.requests.length = 0;
  server.cuts.length = 0;
  server.ignoreRange = false;
});

function options(extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return { url: server.url("b.tar"), file: join(work, `dl-${n++}.tar`), size: data.length, clock: systemClock, log: silentLogger(), retryDelayMs: 5, attempts: 3, ...extra };
}

describe("resumable download", () => {
  test("several interruptions are each resumed from the bytes already on disk", async () => {
    server.cuts.push(30_000, 40_000, 20_000);
    const o = options();
    const result = await downloadResumable(o);
    assert.deepEqual((await readFile(o.file)).equals(data), true);
    assert.deepEqual(
      server.requests.map((r) => r.range),
      [undefined, "bytes=30000-", "bytes=70000-", "bytes=90000-"],
    );
    assert.equal(server.totalBytesSent, data.length);
    assert.equal(result.bytesFetched, data.length);
    assert.equal(result.requests, 4);
  });

  test("a partial file left by an earlier process is resumed; a complete one is not fetched again", async () => {
    const o = options();
    await writeFile(o.file, data.subarray(0, 100_000));
    const resumed = await downloadResumable(o);
    assert.equal(resumed.resumedFrom, 100_000);
    assert.equal(server.requests[0]?.range, "bytes=100000-");
    assert.ok((await readFile(o.file)).equals(data));
    const again = await downloadResumable(o);
    assert.equal(again.requests, 0);
  });

  test("a 200 answer to a Range request restarts the file from zero", async () => {
    server.ignoreRange = true;
    const o = options();
    await writeFile(o.file, Buffer.alloc(50_000, 7));
    const result = await downloadResumable(o);
    assert.equal(result.restarts, 1);
    assert.equal(server.requests[0]?.status, 200);
    assert.ok((await readFile(o.file)).equals(data));
  });

  test("a partial file longer than the job's size is thrown away; 416 starts over", async () => {
    const o = options();
    await writeFile(o.file, Buffer.alloc(data.length + 10));
    await downloadResumable(o);
    assert.equal(server.requests[0]?.range, undefined);
    assert.ok((await readFile(o.file)).equals(data));

    const other = options({ url: server.url("small.tar") });
    server.files.set("small.tar", data.subarray(0, 1000));
    await writeFile(other.file, Buffer.alloc(2000));
    server.requests.length = 0;
    await assert.rejects(downloadResumable({ ...other, size: 3000 }), (error: UpdateError) => error.code === "E_SIZE");
    assert.deepEqual(
      server.requests.map((r) => [r.range, r.status]),
      [
        ["bytes=2000-", 416],
        [undefined, 200],
      ],
    );
  });

  test("permanent answers fail at once with a reason; the link dropping without progress gives up after the attempts", async () => {
    await assert.rejects(downloadResumable(options({ url: server.url("missing.tar") })), (error: UpdateError) => error.code === "E_DOWNLOAD" && /HTTP 404/.test(error.message));
    assert.equal(server.requests.length, 1, "a 404 is not retried");
    await assert.rejects(downloadResumable(options({ size: data.length + 1 })), (error: UpdateError) => error.code === "E_SIZE" && /job says/.test(error.message));

    server.requests.length = 0;
    await assert.rejects(
      downloadResumable(options({ url: "http://127.0.0.1:1/b.tar", attempts: 2 })),
      (error: UpdateError) => error.code === "E_DOWNLOAD" && /2 attempt/.test(error.message),
    );
  });

  test("URLs in messages lose their credentials and query", () => {
    assert.equal(redactUrl("https://user:pw@cdn.example/b.tar?X-Amz-Signature=abc"), "https://cdn.example/b.tar");
  });
});

const skipTls = (await haveOpenssl()) ? false : "openssl CLI not installed (needed to make test certificates)";

describe("resumable download over https", { skip: skipTls }, () => {
  let tlsServer: BundleServer;
  let caFile: string;
  before(async () => {
    const certs = await makeTestCerts(work);
    caFile = certs.caFile;
    tlsServer = await new BundleServer({ cert: await readFile(certs.serverCertFile, "utf8"), key: await readFile(certs.serverKeyFile, "utf8") }).start();
    tlsServer.files.set("b.tar", data);
  });
  after(async () => {
    await tlsServer.close();
  });

  test("a private server's CA in caFile: the bundle comes over https, resumed after a drop", async () => {
    tlsServer.cuts.push(60_000);
    const file = join(work, `tls-${n++}.tar`);
    const result = await downloadResumable(options({ url: tlsServer.url("b.tar"), file, caFile }));
    assert.ok((await readFile(file)).equals(data));
    assert.equal(result.requests, 2);
    assert.equal(tlsServer.requests.at(-1)?.range, `bytes=${tlsServer.requests[0]!.bytesSent}-`);
  });

  test("no CA for it: fails at once, saying the certificate is not trusted and where a CA goes", async () => {
    const before = tlsServer.requests.length;
    await assert.rejects(
      downloadResumable(options({ url: tlsServer.url("b.tar"), attempts: 5 })),
      (error: UpdateError) => error.code === "E_DOWNLOAD" && /not trusted/.test(error.message) && /update\.download\.caFile/.test(error.message),
    );
    assert.equal(tlsServer.requests.length, before, "no request got through the handshake");
  });

  test("an unreadable or empty caFile is named in the error", async () => {
    await assert.rejects(downloadResumable(options({ url: tlsServer.url("b.tar"), caFile: join(work, "missing-ca.pem") })), (error: UpdateError) =>
      /missing-ca\.pem: cannot read it \(ENOENT\)/.test(error.message),
    );
    const empty = join(work, "empty-ca.pem");
    await writeFile(empty, "not a certificate\n");
    await assert.rejects(downloadResumable(options({ url: tlsServer.url("b.tar"), caFile: empty })), (error: UpdateError) =>
      /empty-ca\.pem: no PEM certificate/.test(error.message),
    );
  });
});
