import { test } from "node:test";
import assert from "node:assert/strict";
import { silentLogger } from "../../src/kernel/log.js";
import { HttpServer } from "../../src/api/http-server.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { Outbox } from "../../src/outbox/outbox.js";
import { registerOutboxRoutes } from "../../src/outbox/routes.js";
import { freshDir } from "../helpers/store-fixtures.js";

const TOKEN = "outbox-test-token-0123456789";

test("the local API lists the outbox and retries or discards parked reports, with the token only", async () => {
  const { dir, cleanup } = await freshDir("lk-outbox-api-");
  const clock = new FakeClock(Date.UTC(2026, 5, 1, 8));
  let refuse = true;
  const outbox = new Outbox({ dir, clock, sender: async () => (refuse ? { ok: false, retry: "permanent", reason: "code 4001: refused" } : { ok: true }) });
  const http = new HttpServer({ host: "127.0.0.1", port: 0, token: TOKEN, openReads: "loopback" }, silentLogger());
  registerOutboxRoutes(http, outbox);
  try {
    await outbox.start();
    await http.start();
    const base = `http://127.0.0.1:${http.address().port}`;
    for (const n of [1, 2]) await outbox.enqueue({ recordNo: `R${n}`, kind: "enter", service: "enterNotify", biz: { recordNo: `R${n}` } });
    await clock.advance(10);
    await outbox.whenIdle();

    const listed = (await (await fetch(`${base}/api/outbox?parked=1`)).json()) as { status: { parked: number }; entries: Array<{ key: string; parked?: { reason: string } }> };
    assert.equal(listed.status.parked, 2);
    assert.deepEqual(
      listed.entries.map((e) => [e.key, e.parked?.reason]),
      [
        ["R1:enter", "code 4001: refused"],
        ["R2:enter", "code 4001: refused"],
      ],
    );

    const post = (path: string, body: unknown, auth = true) =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${TOKEN}` } : {}) },
        body: JSON.stringify(body),
      });
    assert.equal((await post("/api/outbox/retry", { key: "all" }, false)).status, 401, "commands need the token");
    const bad = await post("/api/outbox/retry", { key: 7 });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "E_BAD_REQUEST");

    assert.deepEqual(await (await post("/api/outbox/discard", { key: "R2:enter", reason: "duplicate stay" })).json(), { discarded: true });
    refuse = false;
    assert.deepEqual(await (await post("/api/outbox/retry", { key: "all" })).json(), { retried: 1 });
    await clock.advance(10);
    await outbox.whenIdle();
    const after = (await (await fetch(`${base}/api/outbox`)).json()) as { status: { depth: number; parked: number; delivered: number } };
    assert.deepEqual([after.status.depth, after.status.parked, after.status.delivered], [0, 0, 1]);
  } finally {
    await http.stop();
    await outbox.stop();
    await cleanup();
  }
});
