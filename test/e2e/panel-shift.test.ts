// The shift card end to end: the real box in a child process (`lanekeeper demo` with its
// platform emulator), the real page in headless Chromium. The attendant starts a shift on the
// page, one car pays cash and one is let out by hand (driven through the simulator's API), the
// card shows the running totals, the printable page shows them in the lot's time zone, and the
// shift ends from the page.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { screenshot } from "../helpers/browser.js";
import { PanelFixture, browserSuite, logIn, panelOperator as operator, until, waitText } from "../helpers/panel-browser.js";
import { formatWireTime } from "../../src/platform/wire.js";

let fx: PanelFixture;
const api: PanelFixture["api"] = (path, body) => fx.api(path, body);
const barrier = (laneId: string) => fx.lane(laneId);
const arrive = (laneId: string, plate: string) => fx.arrive(laneId, plate);
const passThrough = (laneId: string, plate: string, leftEvent: string) => fx.passThrough(laneId, plate, leftEvent);

browserSuite("the shift card in headless Chromium", () => {
  before(async () => {
    fx = await PanelFixture.open("lk-panel-shift-");
  });

  after(async () => {
    await fx?.close();
  });

  test("start a shift, one cash exit and one hand release, the totals on screen and on the printable page, end the shift", async () => {
    const { context, page } = await fx.newPage({ width: 1360, height: 1000 });
    await waitText(page, "#shift", "当前无人值班");
    await logIn(page);

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
    await print.goto(`${fx.base}${href}`);
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
    await printed.goto(`${fx.base}${lastHref}`);
    assert.ok((await printed.locator("#ended").textContent())?.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/), "an ended shift shows its end time");
    await screenshot(printed, "panel-shift-print");
    await printed.close();

    assert.deepEqual(fx.pageErrors, [], "no script errors in the page");
    await context.close();
  });
});
