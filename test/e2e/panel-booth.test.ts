// The booth panel end to end: the real box in a child process (`lanekeeper demo` with its
// platform emulator), the real page in headless Chromium, on a 1280×800 booth screen and a
// 390×844 phone. Refusals read in the page's language, every open by hand has a reason
// (picked from the list or typed), F8 and F9 do the attendant's two daily actions, and the
// records view searches the stays and shows one stay's history in the lot's time zone.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { startCli, type RunningChild } from "../helpers/child.js";
import { demoRaw, tempDir } from "../helpers/demo-config.js";
import { browserUnavailable, freePort, launchChromium, screenshot } from "../helpers/browser.js";
import { formatWireTime } from "../../src/platform/wire.js";

const token = "demo-token-change-me-0001";
const operator = "王芳";
const booth = { width: 1280, height: 800 };
const phone = { width: 390, height: 844 };

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

type StatusEvent = { type: string; plate?: string; command?: string; reason?: string; operator?: string };
const events = async () => (await api<{ events: StatusEvent[] }>("/api/status")).body.events;
const lane = async (laneId: string) =>
  (await api<{ lanes: Array<{ id: string; barrier: string; phase: string; loops: Record<string, boolean> }> }>("/api/status")).body.lanes.find((l) => l.id === laneId)!;

async function loop(laneId: string, input: string, level: 0 | 1): Promise<void> {
  assert.equal((await api(`/api/sim/inputs/${laneId}/${input}`, { level })).status, 200);
  await until(async () => Boolean((await lane(laneId)).loops[input]) === (level === 1), `${laneId}.${input} = ${level}`);
}

async function arrive(laneId: string, plate: string): Promise<void> {
  await loop(laneId, "loopA", 1);
  assert.equal((await api(`/api/sim/camera/${laneId}`, { plate })).status, 200);
}

async function passThrough(laneId: string, plate: string, leftEvent: string): Promise<void> {
  await until(async () => ["opening", "open"].includes((await lane(laneId)).barrier), `${laneId} open`);
  await loop(laneId, "loopB", 1);
  await loop(laneId, "loopA", 0);
  await loop(laneId, "loopB", 0);
  await until(async () => (await events()).some((e) => e.type === leftEvent && e.plate === plate), `${leftEvent} ${plate}`);
}

async function waitText(page: Page, selector: string, text: string | RegExp): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ state: "visible", timeout: 10_000 });
}

async function newPage(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page }> {
  // The computer is set to another zone than the lot: the page must still show the lot's times.
  const context = await browser.newContext({ timezoneId: "America/New_York", locale: "zh-CN", viewport });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  await page.goto(`${base}/`);
  await page.locator('#conn[data-state="live"]').waitFor({ state: "attached", timeout: 10_000 });
  return { context, page };
}

async function logIn(page: Page): Promise<void> {
  await page.fill("#operator", operator);
  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await waitText(page, "#who-name", operator);
}

/** The page fits its window: nothing to scroll sideways. */
async function assertNoSideScroll(page: Page, what: string): Promise<void> {
  const [scrollWidth, innerWidth] = await page.evaluate<[number, number]>(`[document.scrollingElement.scrollWidth, window.innerWidth]`);
  assert.ok(scrollWidth <= innerWidth, `${what}: scrollWidth ${scrollWidth} > innerWidth ${innerWidth}`);
}

/** Text of a result line with no English words in it (numbers and codes such as 401 may stay). */
async function assertChineseOnly(page: Page, selector: string): Promise<void> {
  const text = (await page.locator(selector).first().textContent()) ?? "";
  assert.doesNotMatch(text, /[a-z]{3,}/, `${selector}: "${text}" shows English inside the Chinese page`);
}

const unavailable = browserUnavailable();

if (unavailable?.mustRun) {
  test("chromium is installed for the booth panel test", () => assert.fail(unavailable.reason));
} else if (unavailable) {
  test("the booth panel in headless Chromium", { skip: unavailable.reason }, () => undefined);
} else {
  describe("the booth panel in headless Chromium", () => {
    let page: Page;
    let context: BrowserContext;

    before(async () => {
      dir = tempDir("lk-panel-booth-");
      const file = writeConfig(await freePort(), await freePort());
      child = startCli(["demo", "--no-traffic", "--config", file]);
      [base, browser] = await Promise.all([child.waitFor(/local API on (http:\/\/[\d.]+:\d+)/, 30_000).then((m) => m[1]!), launchChromium()]);
      ({ context, page } = await newPage(booth));
    });

    after(async () => {
      await browser?.close().catch(() => undefined);
      if (child && child.child.exitCode === null) {
        child.child.kill("SIGTERM");
        await child.exited;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test("a refusal reads in Chinese, not in the box's English", async () => {
      await page.locator("#lane-in1 .reason-pick").selectOption("fault");
      await page.click("#lane-in1 [data-command=open]");
      await waitText(page, "#lane-in1 .result[data-outcome=refused]", "401");
      await waitText(page, "#lane-in1 .result", "需要有效的令牌");
      await assertChineseOnly(page, "#lane-in1 .result");
      // The box's own words stay one hover away for support.
      assert.match((await page.locator("#lane-in1 .result").getAttribute("title")) ?? "", /bearer token/);
      await logIn(page);
    });

    test("F9 asks for a reason first; F8 takes the cash; a reason picked from the list opens with F9; both audited", async () => {
      // A car with no entry record: the rule charges it a flat amount (reason "charge").
      await arrive("out1", "粤A10001");
      await waitText(page, "#lane-out1 .phase", "待缴费");
      await waitText(page, "#events li[data-type=no-entry-record]", "粤A10001");
      const noRecord = (await page.locator("#events li[data-type=no-entry-record]").first().textContent()) ?? "";
      assert.ok(noRecord.includes("按规则收费") && !noRecord.includes("charge"), noRecord);

      // The shortcuts are on the buttons.
      await waitText(page, "#lane-out1 [data-command=cash-paid] kbd", "F8");
      await waitText(page, "#lane-out1 [data-command=open] kbd", "F9");

      // F9 with no reason: the card asks for one; nothing moves.
      await page.keyboard.press("F9");
      await waitText(page, "#lane-out1 .result[data-outcome=refused]", "开闸须选择或填写原因");
      assert.equal(await page.evaluate(`document.activeElement?.classList.contains("reason-pick")`), true, "the reason list has the focus");
      assert.equal((await lane("out1")).barrier, "closed");

      // F8: cash received for the car waiting to pay.
      await page.keyboard.press("F8");
      await waitText(page, "#lane-out1 .result[data-outcome=ok]", "已执行: 现金已收");
      await passThrough("out1", "粤A10001", "vehicle-left");

      // The next car is let out by hand: a reason from the list, then F9.
      await arrive("in1", "粤B20002");
      await passThrough("in1", "粤B20002", "vehicle-entered");
      await arrive("out1", "粤B20002");
      await until(async () => (await lane("out1")).phase === "awaitingPayment", "out1 awaiting payment");
      await page.locator("#lane-out1 .reason-pick").selectOption("fault");
      await page.keyboard.press("F9");
      await waitText(page, "#lane-out1 .result[data-outcome=ok]", "已执行: 开闸");
      await passThrough("out1", "粤B20002", "vehicle-left");
      assert.equal(await page.locator("#lane-out1 .reason-pick").inputValue(), "", "the reason is cleared after use");

      const audit = (await events()).filter((e) => e.type === "attendant-command");
      assert.deepEqual(
        audit.map((e) => [e.command, e.operator, e.reason]),
        [
          ["cash-paid", operator, "现金已收"],
          ["open", operator, "设备故障"],
        ],
      );

      // A car that stays in the lot.
      await arrive("in1", "粤C30003");
      await passThrough("in1", "粤C30003", "vehicle-entered");
      await screenshot(page, "panel-booth-lanes-1280x800");
      await assertNoSideScroll(page, "lanes at 1280×800");
    });

    test("after switching to English the page says it in English, and back", async () => {
      await page.click("#lang");
      await waitText(page, "#lane-out1 .result[data-outcome=ok]", "done: Open");
      assert.equal(await page.locator("text=已执行").count(), 0, "no Chinese result left in the English page");
      assert.equal(await page.locator("#lane-out1 .reason-pick option[value=fault]").textContent(), "Equipment fault");
      await waitText(page, "#lane-out1 [data-command=cash-paid]", "Cash received");
      await page.click("#lang");
      await waitText(page, "#lane-out1 .result[data-outcome=ok]", "已执行: 开闸");
    });

    test("records: search by a misread plate, by status and time on the lot's clock; a stay's history", async () => {
      await page.click("[data-view=records]");
      await page.locator("#rec-table tbody tr[data-record]").first().waitFor({ state: "visible", timeout: 10_000 });
      assert.equal(await page.locator("#rec-table tbody tr[data-record]").count(), 3);
      assert.equal(await page.locator("#rec-table tbody tr").first().getAttribute("data-status"), "in-park", "the car in the lot first");
      await waitText(page, "#rec-zone", "Asia/Shanghai");

      // A whole plate read a character off (鄂 for 粤, O for 0) finds the stay, marked fuzzy.
      await page.fill("#rec-plate", "鄂A1O001");
      await page.click("#records-form button[type=submit]");
      await until(async () => (await page.locator("#rec-table tbody tr[data-record]").count()) === 1, "one row");
      await waitText(page, "#rec-table tbody tr[data-record] td.plate", "粤A10001");
      await waitText(page, "#rec-table tbody tr[data-record] td.plate .pill", "模糊匹配");

      // By status.
      await page.click("#rec-clear");
      await page.locator("#rec-status").selectOption("released");
      await page.click("#records-form button[type=submit]");
      await until(async () => (await page.locator("#rec-table tbody tr[data-record]").count()) === 1, "one released");
      await waitText(page, "#rec-table tbody tr[data-record] td.status", "人工放行");

      // The history of the hand release: its times on the lot's clock, its reason.
      const record = (await api<{ items: Array<{ recordNo: string; enterAtMs: number; plate: string }> }>("/api/records?status=released")).body.items[0]!;
      await page.click("#rec-table tbody tr[data-record]");
      await waitText(page, "#rec-detail-no", record.recordNo);
      await waitText(page, "#rec-detail-fields", formatWireTime(record.enterAtMs, "Asia/Shanghai"));
      await waitText(page, "#rec-detail-fields", "人工放行");
      await waitText(page, "#rec-detail-events li[data-type=payment]", "设备故障");
      await waitText(page, "#rec-detail-reports", /无待发送上报|已送达|待发送|重试中/);
      await screenshot(page, "panel-booth-records-1280x800");
      await assertNoSideScroll(page, "records at 1280×800");

      // From a time in the lot's zone: an hour from now (Shanghai), only the car still in the lot.
      const inAnHour = formatWireTime(Date.now() + 3_600_000, "Asia/Shanghai")
        .replace(" ", "T")
        .slice(0, 16);
      await page.click("#rec-clear");
      await page.fill("#rec-from", inAnHour);
      const asked = page.waitForRequest((req) => req.url().includes("/api/records?") && req.url().includes("from="));
      await page.click("#records-form button[type=submit]");
      const from = Number(new URL((await asked).url()).searchParams.get("from"));
      assert.equal(formatWireTime(from, "Asia/Shanghai").slice(0, 16), inAnHour.replace("T", " "), "the field meant the lot's clock, not New York's");
      await until(async () => (await page.locator("#rec-table tbody tr[data-record]").count()) === 1, "only the car in the lot");
      await waitText(page, "#rec-table tbody tr[data-record] td.plate", "粤C30003");

      // The shortcuts do nothing here (no lane on screen).
      const commands = async () => (await events()).filter((e) => e.type === "attendant-command").length;
      const before = await commands();
      await page.keyboard.press("F9");
      await page.keyboard.press("F8");
      await page.waitForTimeout(300);
      assert.equal(await commands(), before, "no command sent from the records view");
      await page.click("[data-view=lanes]");
    });

    test("on a phone: the lanes and the records fit the screen, nothing scrolls sideways", async () => {
      const small = await newPage(phone);
      try {
        await logIn(small.page);
        await small.page.locator("#lane-out1").waitFor({ state: "visible" });
        await screenshot(small.page, "panel-booth-lanes-390x844");
        await assertNoSideScroll(small.page, "lanes on a phone");
        await small.page.click("[data-view=records]");
        await small.page.locator("#rec-table tbody tr[data-record]").first().waitFor({ state: "visible", timeout: 10_000 });
        await small.page.click("#rec-table tbody tr[data-record]");
        await small.page.locator("#rec-detail").waitFor({ state: "visible" });
        await screenshot(small.page, "panel-booth-records-390x844");
        await assertNoSideScroll(small.page, "records on a phone");
      } finally {
        await small.context.close();
      }
      assert.deepEqual(pageErrors, [], "no script errors in the page");
      await context.close();
    });
  });
}
