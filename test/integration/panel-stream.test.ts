import { test } from "node:test";
import assert from "node:assert/strict";
import { get, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { HttpServer } from "../../src/api/http-server.js";
import { registerPanelRoutes, type PanelRoutes, type PanelRoutesOptions } from "../../src/api/panel-routes.js";
import { silentLogger } from "../../src/kernel/log.js";
import { testConfig } from "../helpers/demo-config.js";

const token = "panel-test-token-0001";

/** A status source that counts its listeners and builds a status on demand. */
class FakeFeed {
  counter = 0;
  built = 0;
  extra = "";
  readonly listeners = new Set<() => void>();
  status(): unknown {
    this.built++;
    return { counter: this.counter, extra: this.extra };
  }
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  change(): void {
    this.counter++;
    for (const listener of this.listeners) listener();
  }
}

async function withServer(
  options: PanelRoutesOptions & { openReads?: "loopback" | "anywhere" | "never" },
  body: (ctx: { base: string; port: number; feed: FakeFeed; panel: PanelRoutes }) => Promise<void>,
): Promise<void> {
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token, openReads: options.openReads ?? "loopback" }, silentLogger());
  const feed = new FakeFeed();
  const panel = registerPanelRoutes(http, feed, options);
  await http.start();
  const { port } = http.address();
  try {
    await body({ base: `http://127.0.0.1:${port}`, port, feed, panel });
  } finally {
    await http.stop();
  }
}

interface SseClient {
  res: IncomingMessage;
  events: Array<{ event: string; data: string }>;
  retry: number | undefined;
  next(count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

function openStream(url: string): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      const client: SseClient = {
        res,
        events: [],
        retry: undefined,
        next(count, timeoutMs = 3000) {
          return new Promise((done, fail) => {
            const timer = setTimeout(() => fail(new Error(`only ${client.events.length} events, wanted ${count}`)), timeoutMs);
            const check = (): void => {
              if (client.events.length >= count) {
                clearTimeout(timer);
                res.off("data", check);
                done();
              }
            };
            res.on("data", check);
            setImmediate(check);
          });
        },
        close: () => req.destroy(),
      };
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
            else if (line.startsWith("retry: ")) client.retry = Number(line.slice(7));
          }
          if (data.length) client.events.push({ event, data: data.join("\n") });
        }
      });
      res.on("error", () => undefined);
      resolve(client);
    });
    req.on("error", reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test("the page and its files are served with their types and a strict content policy; other names are 404", async () => {
  await withServer({}, async ({ base }) => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    assert.equal(page.headers.get("x-frame-options"), "DENY");
    const html = await page.text();
    assert.match(html, /现金已收/);
    assert.doesNotMatch(html, /https?:\/\/(?!local)/, "the page loads nothing from elsewhere");
    for (const [file, type] of [
      ["panel.js", /javascript/],
      ["format.js", /javascript/],
      ["i18n.js", /javascript/],
      ["panel.css", /text\/css/],
    ] as const) {
      const res = await fetch(`${base}/panel/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get("content-type") ?? "", type, file);
      assert.doesNotMatch(await res.text(), /\bhttps?:\/\//, `${file} refers to no other server`);
    }
    for (const bad of ["format.d.ts", "..%2Fpackage.json", "%2E%2E%2F%2E%2E%2Fpackage.json", "toString", "constructor"]) {
      const res = await fetch(`${base}/panel/${bad}`);
      assert.equal(res.status, 404, bad);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "E_NOT_FOUND");
    }
  });
});

test("a burst of changes reaches a page as a few status events, the last one current", async () => {
  await withServer({ minIntervalMs: 200 }, async ({ base, feed, panel }) => {
    const client = await openStream(`${base}/api/stream`);
    assert.match(client.res.headers["content-type"] ?? "", /^text\/event-stream/);
    await client.next(1);
    assert.equal(client.retry, 2000, "the browser is told when to reconnect");
    const first = JSON.parse(client.events[0]!.data) as { counter: number; nowMs: number };
    assert.equal(first.counter, 0);
    assert.ok(Math.abs(first.nowMs - Date.now()) < 5000, "the status carries the box's time");

    const builtBefore = feed.built;
    for (let i = 0; i < 500; i++) feed.change();
    await client.next(2);
    await sleep(500);
    const statuses = client.events.filter((e) => e.event === "status");
    assert.ok(statuses.length <= 3, `500 changes gave ${statuses.length} events`);
    assert.equal((JSON.parse(statuses.at(-1)!.data) as { counter: number }).counter, 500);
    assert.ok(feed.built - builtBefore <= 2, `the status was built ${feed.built - builtBefore} times`);
    assert.equal(panel.stats().streams, 1);
    client.close();
  });
});

test("two pages share one status build per send; the feed is left alone once both are gone", async () => {
  await withServer({ minIntervalMs: 50 }, async ({ base, feed, panel }) => {
    const a = await openStream(`${base}/api/stream`);
    const b = await openStream(`${base}/api/stream`);
    await a.next(1);
    await b.next(1);
    assert.equal(feed.listeners.size, 1, "one subscription for every page");
    const builtBefore = feed.built;
    feed.change();
    await a.next(2);
    await b.next(2);
    assert.equal(feed.built - builtBefore, 1, "built once, written to both");
    a.close();
    b.close();
    for (let i = 0; i < 50 && panel.stats().streams > 0; i++) await sleep(10);
    assert.equal(panel.stats().streams, 0);
    assert.equal(feed.listeners.size, 0, "no page, no subscription (and no timers)");
  });
});

test("with nothing happening a page still gets the status every refresh period", async () => {
  await withServer({ refreshMs: 150 }, async ({ base, feed }) => {
    const client = await openStream(`${base}/api/stream`);
    await client.next(3, 2000);
    assert.equal(feed.counter, 0, "no change was made; the refreshes came by themselves");
    client.close();
  });
});

test("reads need the token where the config says so; the token check for the login form", async () => {
  await withServer({ openReads: "never" }, async ({ base }) => {
    const bare = await fetch(`${base}/api/stream`);
    assert.equal(bare.status, 401);
    assert.equal(((await bare.json()) as { error: { code: string } }).error.code, "E_AUTH");
    const wrong = await fetch(`${base}/api/stream?access_token=not-the-token-at-all`);
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const client = await openStream(`${base}/api/stream?access_token=${token}`);
    assert.equal(client.res.statusCode, 200);
    await client.next(1);
    client.close();
    // The page itself is open: it holds no data.
    assert.equal((await fetch(`${base}/`)).status, 200);

    assert.equal((await fetch(`${base}/api/panel/session`)).status, 401);
    assert.equal((await fetch(`${base}/api/panel/session`, { headers: { authorization: "Bearer wrong-token-000000" } })).status, 401);
    const ok = await fetch(`${base}/api/panel/session`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ok: true });
  });
  await withServer({ openReads: "loopback" }, async ({ base }) => {
    // On loopback the session check still needs the token: it is what the login form verifies.
    assert.equal((await fetch(`${base}/api/panel/session`)).status, 401);
    const client = await openStream(`${base}/api/stream`);
    assert.equal(client.res.statusCode, 200, "reads are open on loopback");
    client.close();
  });
});

test("more pages than allowed are refused with 503 and counted; a slot frees when a page closes", async () => {
  await withServer({ maxStreams: 2 }, async ({ base, panel }) => {
    const a = await openStream(`${base}/api/stream`);
    const b = await openStream(`${base}/api/stream`);
    await a.next(1);
    await b.next(1);
    const third = await fetch(`${base}/api/stream`);
    assert.equal(third.status, 503);
    assert.equal(((await third.json()) as { error: { code: string } }).error.code, "E_TOO_MANY_STREAMS");
    assert.equal(panel.stats().refusedStreams, 1);
    a.close();
    for (let i = 0; i < 50 && panel.stats().streams > 1; i++) await sleep(10);
    const c = await openStream(`${base}/api/stream`);
    assert.equal(c.res.statusCode, 200);
    await c.next(1);
    b.close();
    c.close();
  });
});

test("a page that stops reading is skipped instead of buffered, then gets the newest status", async () => {
  await withServer({ minIntervalMs: 10 }, async ({ port, feed, panel }) => {
    // A big status fills the socket buffers at once; the reader does not read until told.
    feed.extra = "x".repeat(4 * 1024 * 1024);
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.pause();
    socket.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await sleep(100);
    for (let i = 0; i < 10; i++) {
      feed.change();
      await sleep(30);
    }
    const stats = panel.stats();
    assert.ok(stats.skippedSlow >= 5, `skipped ${stats.skippedSlow} sends to the stalled page`);
    assert.ok(stats.statusEvents <= 2, `${stats.statusEvents} frames written while it was stalled`);

    // Now it reads: after the backlog, one more frame with the newest counter arrives.
    feed.extra = "";
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.resume();
    for (let i = 0; i < 200 && !/"counter":10,"extra":""/.test(text); i++) await sleep(20);
    assert.match(text, /"counter":10,"extra":""/);
    socket.destroy();
  });
});

test("the box listens on loopback unless the config says otherwise, and reads are open only there", () => {
  const config = testConfig((raw) => {
    delete raw.api.host;
    delete raw.api.openReads;
  });
  assert.equal(config.api.host, "127.0.0.1");
  assert.equal(config.api.openReads, "loopback");
});
