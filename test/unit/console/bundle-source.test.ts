import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { join } from "node:path";
import fc from "fast-check";
import { describeBundle, serveBundle } from "../../../src/console/bundle-source.js";
import { systemClock } from "../../../src/kernel/clock.js";
import { silentLogger } from "../../../src/kernel/log.js";
import { downloadResumable } from "../../../src/update/download.js";
import { makeBundle, makeKey, tempDir } from "../../helpers/update-fixtures.js";

// `fleet rollout --serve`: the console's own HTTP server for the bundle, fetched by the box's
// real resumable downloader over loopback, including a download cut and resumed with Range.

const runs = Number(process.env.LK_FUZZ_RUNS ?? 40);
let work: string;
let bundleFile: string;
let bytes: Buffer;
let server: Server;
let url: string;

before(async () => {
  work = await tempDir("bundle-source");
  const key = await makeKey(work, "serve-test");
  bundleFile = (await makeBundle(work, "4.5.6", key, { blobBytes: 400_000 })).outFile;
  bytes = await readFile(bundleFile);
  ({ server, url } = await serveBundle(bundleFile, "127.0.0.1:0"));
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(work, { recursive: true, force: true });
});

test("a bundle is described by its manifest's version, its size and its SHA-256", async () => {
  const described = await describeBundle(bundleFile);
  assert.equal(described.version, "4.5.6");
  assert.equal(described.size, bytes.length);
  const { createHash } = await import("node:crypto");
  assert.equal(described.sha256, createHash("sha256").update(bytes).digest("hex"));
  const notABundle = join(work, "plain.txt");
  await writeFile(notABundle, "hello");
  await assert.rejects(describeBundle(notABundle), /not a release bundle|TAR|tar/i);
});

test("a box's download from --serve, cut halfway, resumes with Range and ends byte-identical", async () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/lanekeeper-4\.5\.6-/);
  const file = join(work, "dl.tar");
  let cut = false;
  const result = await downloadResumable({
    url,
    file,
    size: bytes.length,
    clock: systemClock,
    log: silentLogger(),
    retryDelayMs: 5,
    attempts: 3,
    onChunk: (written) => {
      // The link drops once, past the first 100 kB: what is on disk stays.
      if (!cut && written > 100_000) {
        cut = true;
        throw new Error("link dropped");
      }
    },
  });
  assert.equal(cut, true);
  assert.equal(result.requests, 2, "one request, then one resumed");
  assert.equal(result.restarts, 0, "the server honoured Range (206), the file did not start over");
  assert.equal(result.bytesFetched, bytes.length, "no byte fetched twice");
  assert.ok((await readFile(file)).equals(bytes));
});

test("any Range header gets 206 with the exact tail, 416 past the end, or the whole file; other paths 404", async () => {
  assert.equal((await fetch(new URL("/other.tar", url))).status, 404);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.integer({ min: 0, max: bytes.length + 10 }).map((n) => `bytes=${n}-`),
        fc.tuple(fc.nat(1000), fc.nat(1000)).map(([a, b]) => `bytes=${a}-${b}`),
        fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
      ),
      async (range) => {
        const res = await fetch(url, { headers: { range } });
        const body = Buffer.from(await res.arrayBuffer());
        const open = /^bytes=(\d+)-$/.exec(range);
        if (open && Number(open[1]) >= bytes.length) {
          assert.equal(res.status, 416);
          assert.equal(res.headers.get("content-range"), `bytes */${bytes.length}`);
        } else if (open) {
          const start = Number(open[1]);
          assert.equal(res.status, 206);
          assert.equal(res.headers.get("content-range"), `bytes ${start}-${bytes.length - 1}/${bytes.length}`);
          assert.ok(body.equals(bytes.subarray(start)));
        } else {
          // A form the server does not serve partially: the whole file, as RFC 9110 allows.
          assert.equal(res.status, 200);
          assert.ok(body.equals(bytes));
        }
      },
    ),
    { numRuns: runs },
  );
});

test("--serve takes host:port and says so otherwise", async () => {
  await assert.rejects(serveBundle(bundleFile, "8080"), /host:port/);
  await assert.rejects(serveBundle(bundleFile, "localhost"), /host:port/);
});
