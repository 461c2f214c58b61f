// The shift card end to end: the real box in a child process (`lanekeeper demo` with its
// platform emulator), the real page in headless Chromium. The attendant starts a shift on the
// page, one car pays cash and one is let out by hand (driven through the simulator's API), the
// card shows the running totals, the printable page shows them in the lot's time zone, and the
// shift ends from the page.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { startCli, type RunningChild } from "../helpers/child.js";
import { demoRaw, tempDir } from "../helpers/demo-config.js";
import { browserUnavailable, freePort, launchChromium, screenshot } from "../helpers/browser.js";
import { formatWireTime } from "../../src/platform/wire.js";

const token = "demo-token-change-me-0001";
const operator = "王芳";

let dir: string;
let base: string;
let child: RunningChild | undefined;
let browser: Browser;
const pageErrors: string[] = [];

/** The demo config on private ports and a temp store; 5 元 from the first minute, so every exit owes money. */
function writeConfig(apiPort: number, emulatorPort: number): string {
  const raw = demoRaw() as Record<string, any>;
  raw.api.port = apiPort;
  raw.platform.baseUrl = `http://127.0.0.1:${emulatorPort}/`;
  raw.store.dir = join(dir, "store");
  raw.log = { level: "warn" };
  raw.fees.tariffs.standard = {
    name: "5 yuan the first hour from the first minute",
    free: { minutes: 0 },
    segments: [{ name: "all day", from: "00:00", to: "24:00", firstPeriod: { minutes: 60, priceFen: 500 }, unitMinutes: 60, unitPriceFen: 100, rounding: "up" }],
  };
  const file = join(dir, "lanekeeper.json");
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}

async function api<T = any>(path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const events = async () => (await api<{ events: Array<{ type: string; plate?: string }> }>("/api/status")).body.events;
const barrier = async (laneId: string) =>
  (await api<{ lanes: Array<{ id: string; barrier: string; phase: string; loops: Record<string, boolean> }> }>("/api/status")).body.lanes.find((l) => l.id === laneId)!;
/** Sets a simulated loop and waits until the lane's debounced state follows it. */
async function loop(laneId: string, input: string, level: 0 | 1): Promise<void> {
  assert.equal((await api(`/api/sim/inputs/${laneId}/${input}`, { level })).status, 200);
  await until(async () => Boolean((await barrier(laneId)).loops[input]) === (level === 1), `${laneId}.${input} = ${level}`);
}

/** A car on the arming loop, read by the camera; resolves once the lane has decided. */
async function arrive(laneId: string, plate: string): Promise<void> {
  await loop(laneId, "loopA", 1);
  assert.equal((await api(`/api/sim/camera/${laneId}`, { plate })).status, 200);
}

/** The car drives through the open arm and off the loops. */
async function passThrough(laneId: string, plate: string, leftEvent: string): Promise<void> {
  await until(async () => ["opening", "open"].includes((await barrier(laneId)).barrier), `${laneId} open`);
  await loop(laneId, "loopB", 1);
  await loop(laneId, "loopA", 0);
  await loop(laneId, "loopB", 0);
  await until(async () => (await events()).some((e) => e.type === leftEvent && e.plate === plate), `${leftEvent} ${plate}`);
}

async function waitText(page: Page, selector: string, text: string | RegExp): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ state: "visible", timeout: 10_000 });
}

const unavailable = browserUnavailable();

if (unavailable?.mustRun) {
  test("chromium is installed for the panel shift test", () => assert.fail(unavailable.reason));
} else if (unavailable) {
  test("the shift card in headless Chromium", { skip: unavailable.reason }, () => undefined);
} else {
  describe("the shift card in headless Chromium", () => {
    before(async () => {
      dir = tempDir("lk-panel-shift-");
      const file = writeConfig(await freePort(), await freePort());
      child = startCli(["demo", "--no-traffic", "--config", file]);
      [base, browser] = await Promise.all([child.waitFor(/local API on (http:\/\/[\d.]+:\d+)/, 30_000).then((m) => m[1]!), launchChromium()]);
    });

    after(async () => {
      await browser?.close().catch(() => undefined);
      if (child && child.child.exitCode === null) {
        child.child.kill("SIGTERM");
        await child.exited;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test("start a shift, one cash exit and one hand release, the totals on screen and on the printable page, end the shift", async () => {
      const context = await browser.newContext({ timezoneId: "America/New_York", locale: "zh-CN", viewport: { width: 1360, height: 1000 } });
      const page = await context.newPage();
      page.on("pageerror", (error) => pageErrors.push(String(error)));
      await page.goto(`${base}/`);
      await page.locator('#conn[data-state="live"]').waitFor({ state: "attached", timeout: 10_000 });
      await waitText(page, "#shift", "当前无人值班");
      await page.fill("#operator", operator);
      await page.fill("#token", token);
      await page.click("#login button[type=submit]");
      await waitText(page, "#who-name", operator);

      await page.click("#shift-start");
      await page.locator('#shift[data-open="1"]').waitFor({ state: "attached", timeout: 10_000 });
      await waitText(page, "#shift-totals dd[data-key=operator]", operator);
      await waitText(page, "#shift-totals dd[data-key=cash]", "0 · 0.00 元");
      const shift = (await api<{ shift: { id: string; startedAtMs: number } }>("/api/shift")).body.shift;

      // A car pays cash at the exit.
      await arrive("in1", "粤A11111");
      await passThrough("in1", "粤A11111", "vehicle-entered");
      await arrive("out1", "粤A11111");
      await until(async () => (await barrier("out1")).phase === "awaitingPayment", "out1 awaiting payment");
      assert.equal((await api("/api/lanes/out1/commands", { command: "cash-paid", operator, reason: "现金收费" })).status, 200);
      await passThrough("out1", "粤A11111", "vehicle-left");

      // A car let out by hand, unpaid, with a reason.
      await arrive("in1", "粤A22222");
      await passThrough("in1", "粤A22222", "vehicle-entered");
      await arrive("out1", "粤A22222");
      await until(async () => (await barrier("out1")).phase === "awaitingPayment", "out1 awaiting payment");
      assert.equal((await api("/api/lanes/out1/commands", { command: "open", operator, reason: "司机无手机" })).status, 200);
      await passThrough("out1", "粤A22222", "vehicle-left");

      // The card follows without a reload.
      await waitText(page, "#shift-totals dd[data-key=cash]", "1 · 5.00 元");
      await waitText(page, "#shift-totals dd[data-key=cash-out1]", "1 · 5.00 元");
      await waitText(page, "#shift-totals dd[data-key=releases]", "1 · 5.00 元");
      await waitText(page, "#shift-totals dd[data-key=drawer]", "5.00 元");
      await waitText(page, "#shift-totals dd[data-key=refunds]", "0 · 0.00 元");
      await waitText(page, "#shift-refunds li.empty", "无应退款");
      await screenshot(page, "panel-shift-open");

      // The printable page of the open shift, from the card's link.
      const href = await page.locator("#shift-print").getAttribute("href");
      assert.ok(href?.startsWith(`/api/shifts/${encodeURIComponent(shift.id)}/print`), String(href));
      const print = await context.newPage();
      await print.goto(`${base}${href}`);
      assert.equal(await print.locator("#operator").textContent(), operator);
      assert.equal(await print.locator("#started").textContent(), formatWireTime(shift.startedAtMs, "Asia/Shanghai"), "start in the lot's zone, not New York's");
      assert.equal(await print.locator("#cash-total").textContent(), "5.00");
      assert.ok((await print.content()).includes("司机无手机"), "the release's reason");
      await screenshot(print, "panel-shift-print-open");
      await print.close();

      // End the shift from the page.
      await page.click("#shift-end");
      await page.locator('#shift[data-open="0"]').waitFor({ state: "attached", timeout: 10_000 });
      await waitText(page, "#shift-last-text", shift.id);
      await waitText(page, "#shift-last-text", "5.00 元");
      await waitText(page, "#shift .result[data-outcome=ok]", "已交班");
      await screenshot(page, "panel-shift-ended");

      const ended = await api<{ items: Array<{ id: string; operator: string; endedBy: string; totals: { cashFen: number; releases: number; drawerFen: number } }> }>("/api/shifts");
      assert.deepEqual(
        ended.body.items.map((s) => [s.id, s.operator, s.endedBy, s.totals.cashFen, s.totals.releases, s.totals.drawerFen]),
        [[shift.id, operator, operator, 500, 1, 500]],
      );
      const lastHref = await page.locator("#shift-last-print").getAttribute("href");
      const printed = await context.newPage();
      await printed.goto(`${base}${lastHref}`);
      assert.ok((await printed.locator("#ended").textContent())?.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/), "an ended shift shows its end time");
      await screenshot(printed, "panel-shift-print");
      await printed.close();

      assert.deepEqual(pageErrors, [], "no script errors in the page");
      await context.close();
    });
  });
}
