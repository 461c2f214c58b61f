// The local panel end to end: the real box in a child process (`lanekeeper demo`
// with its platform emulator), the real page in headless Chromium from the distribution,
// driven only through what a person can click and read.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { screenshot } from "../helpers/browser.js";
import { PanelFixture, browserSuite, panelOperator as operator, panelToken as token, waitState, waitText } from "../helpers/panel-browser.js";
import { VERSION } from "../../src/version.js";

const plate = "粤A12345";
const shanghaiOffsetMs = 8 * 3_600_000; // Asia/Shanghai has no daylight saving time.

/** "HH:MM:SS" on the lot's clock, computed without Intl so the page's formatting is checked independently. */
const shanghaiTime = (ms: number): string => new Date(ms + shanghaiOffsetMs).toISOString().slice(11, 19);

let fx: PanelFixture;
let context: BrowserContext;
let page: Page;
const api: PanelFixture["api"] = (path, body) => fx.api(path, body);

/** A page at the laptop's size, left blank (the test goes to the box itself). */
const newPanel = () => fx.newPage({ width: 1360, height: 900 }, { goto: false });

async function logIn(on: Page, name: string, secret: string): Promise<void> {
  await on.fill("#operator", name);
  await on.fill("#token", secret);
  await on.click("#login button[type=submit]");
}

browserSuite("the local panel in headless Chromium", () => {
  before(async () => {
    fx = await PanelFixture.open("lk-panel-", { openReads: "loopback" });
    ({ context, page } = await newPanel());
  });

  after(async () => {
    await fx?.close();
  });

  test("the page shows the lot live, in the lot's time zone, without request storms", async () => {
    const requests: string[] = [];
    page.on("request", (request) => requests.push(request.url()));
    await page.goto(`${fx.base}/`);
    await waitState(page, "#conn", "live");
    await waitText(page, "#lane-in1 .lane-name", "North entry");
    await waitText(page, "#lane-out1 .lane-dir", "出口");
    await waitState(page, "#lane-in1 .barrier", "closed");
    await waitText(page, "#version", `v${VERSION}`);
    await waitText(page, "#health dd[data-key=platform]", "正常");
    assert.equal(await page.locator("#clock-sync").getAttribute("data-state"), "unknown", "no systemd here: the box cannot tell, and says so");
    assert.equal(await page.locator("#lane-in1 .sim").isVisible(), true, "sim controls in sim mode");

    const [clockText, clockMs] = await page.evaluate<[string, number]>(`[document.querySelector("#box-time").textContent, Number(document.querySelector("#box-time").dataset.ms)]`);
    assert.match(clockText, /\(Asia\/Shanghai\)/);
    assert.ok(clockText.includes(shanghaiTime(clockMs)), `${clockText} shows ${shanghaiTime(clockMs)} (the lot's time, not New York's)`);

    // Idle: the page waits for the server's events; it asks nothing by itself.
    const before = requests.length;
    await page.waitForTimeout(2000);
    // The lot card asks for the lot every 3 s (panel/lot.js); nothing else goes out.
    const idle = requests.slice(before);
    assert.deepEqual(
      idle.filter((url) => !url.endsWith("/api/lot")),
      [],
      "no requests from an idle page but the lot card's",
    );
    assert.ok(idle.length <= 1, `at most one lot refresh in 2 s: ${idle.join(", ")}`);
  });

  test("an action without the token is refused by the box and the page says so; the lane is unchanged", async () => {
    assert.equal(await page.evaluate(`sessionStorage.getItem("lk.token")`), null);
    await page.fill("#lane-in1 .reason", "测试");
    await page.click("#lane-in1 [data-command=open]");
    await waitText(page, "#lane-in1 .result[data-outcome=refused]", "401");
    await waitText(page, "#lane-in1 .result", "请先登录");
    await page.click("#lane-in1 [data-sim-input=loopA]");
    await waitText(page, "#lane-in1 .result[data-outcome=refused]", "401");
    await page.waitForTimeout(400);
    await waitState(page, "#lane-in1 .barrier", "closed");
    await waitState(page, "#lane-in1 .loopA", "clear");
    const status = await api<{ lanes: Array<{ id: string; barrier: string; loops: { loopA: boolean } }>; httpRejections: Record<string, number> }>("/api/status");
    const in1 = status.body.lanes.find((lane) => lane.id === "in1")!;
    assert.equal(in1.barrier, "closed");
    assert.equal(in1.loops.loopA, false);
    assert.ok((status.body.httpRejections["POST /api/lanes/:laneId/commands"] ?? 0) >= 1, "the box refused (and counted) the command");
    const sim = await api<{ inputs: Record<string, number> }>("/api/sim/outputs");
    assert.equal(sim.body.inputs["in1.loopA"], 0);

    // A wrong token is refused at the login form and not kept.
    await logIn(page, operator, "not-the-right-token-000");
    await waitText(page, "#auth-msg", "令牌错误");
    assert.equal(await page.evaluate(`sessionStorage.getItem("lk.token")`), null);
    assert.equal(await page.locator("#login").isVisible(), true);
    await screenshot(page, "panel-refused");
  });

  test("a car enters and leaves paying cash through the page's button", async () => {
    await logIn(page, operator, token);
    await waitText(page, "#who-name", operator);
    assert.equal(await page.evaluate(`sessionStorage.getItem("lk.token")`), token, "the token is kept for the session");
    assert.equal(await page.evaluate(`localStorage.getItem("lk.token")`), null, "and nowhere longer-lived");
    await waitState(page, "#conn", "live");

    // Entry: a car on the arming loop, the camera reads it, the arm opens, it drives through.
    await page.click("#lane-in1 [data-sim-input=loopA]");
    await waitState(page, "#lane-in1 .loopA", "occupied");
    await page.fill("#lane-in1 .sim-plate", plate);
    await page.click("#lane-in1 [data-sim=camera]");
    await waitText(page, "#lane-in1 .plate", plate);
    await page.locator('#lane-in1 .barrier[data-state="opening"], #lane-in1 .barrier[data-state="open"]').first().waitFor({ state: "attached", timeout: 10_000 });
    await page.click("#lane-in1 [data-sim-input=loopB]");
    await waitState(page, "#lane-in1 .loopB", "occupied");
    await page.click("#lane-in1 [data-sim-input=loopA]");
    await waitState(page, "#lane-in1 .loopA", "clear");
    await page.click("#lane-in1 [data-sim-input=loopB]");
    await waitState(page, "#lane-in1 .loopB", "clear");
    await waitText(page, "#events li[data-type=vehicle-entered]", plate);

    // Exit: the bill is shown in 元 with two decimals, the payment path is pending.
    await page.click("#lane-out1 [data-sim-input=loopA]");
    await waitState(page, "#lane-out1 .loopA", "occupied");
    await page.fill("#lane-out1 .sim-plate", plate);
    await page.click("#lane-out1 [data-sim=camera]");
    await waitText(page, "#lane-out1 .fee", "5.00 元");
    await waitText(page, "#lane-out1 .pay", "待支付");
    await waitText(page, "#lane-out1 .phase", "待缴费");
    await waitText(page, "#lane-out1 .display-line", "5.00");
    await waitText(page, "#events li[data-type=fee-due]", "5.00 元");
    assert.equal(await page.locator("#lane-out1 [data-command=cash-paid]").isEnabled(), true);
    assert.equal(await page.locator("#lane-in1 [data-command=cash-paid]").isVisible(), false, "no cash button at an entry");
    await screenshot(page, "panel-fee-due-zh");

    // The same state in English.
    await page.click("#lang");
    await waitText(page, "#lane-out1 [data-command=cash-paid]", "Cash received");
    await waitText(page, "#lane-out1 .pay", "awaiting payment");
    await waitText(page, "#lane-out1 .barrier", "closed");
    await screenshot(page, "panel-fee-due-en");
    await page.click("#lang");
    await waitText(page, "#lane-out1 [data-command=cash-paid]", "现金已收");

    // An unpaid car is not released by "open" without a reason.
    await page.click("#lane-out1 [data-command=open]");
    await waitText(page, "#lane-out1 .result[data-outcome=refused]", "原因");
    await waitState(page, "#lane-out1 .barrier", "closed");

    await page.fill("#lane-out1 .reason", "现金收费");
    await page.click("#lane-out1 [data-command=cash-paid]");
    await waitText(page, "#lane-out1 .result[data-outcome=ok]", "已执行: 现金已收");
    await page.locator('#lane-out1 .barrier[data-state="opening"], #lane-out1 .barrier[data-state="open"]').first().waitFor({ state: "attached", timeout: 10_000 });
    await waitText(page, "#events li[data-type=payment]", /5\.00 元 现金 @王芳/);
    await screenshot(page, "panel-paid");

    await page.click("#lane-out1 [data-sim-input=loopB]");
    await waitState(page, "#lane-out1 .loopB", "occupied");
    await page.click("#lane-out1 [data-sim-input=loopA]");
    await waitState(page, "#lane-out1 .loopA", "clear");
    await page.click("#lane-out1 [data-sim-input=loopB]");
    await waitState(page, "#lane-out1 .loopB", "clear");
    await waitText(page, "#events li[data-type=vehicle-left]", plate);

    // The box agrees: the payment was cash, by the operator logged in on the page.
    const status = await api<{ events: Array<{ type: string; atMs: number; path?: string; operator?: string; feeFen?: number; plate?: string }> }>("/api/status");
    const payment = status.body.events.find((event) => event.type === "payment");
    assert.ok(payment, "a payment event");
    assert.equal(payment.path, "cash");
    assert.equal(payment.operator, operator);
    assert.equal(payment.feeFen, 500);
    assert.equal(payment.plate, plate);
    const line = await page.locator("#events li[data-type=payment]").first().textContent();
    assert.ok(line?.startsWith(shanghaiTime(payment.atMs)), `the event time ${line} is the lot's (${shanghaiTime(payment.atMs)})`);
  });

  test("the page keeps updating after the box restarts, and reads need the token once the box says so", async () => {
    await fx.stopBox();
    await page.locator('#conn:not([data-state="live"])').waitFor({ state: "attached", timeout: 10_000 });

    // Same port and store; this time reads are token-only, as on a box opened to the LAN.
    await fx.restart({ openReads: "never" });
    await waitState(page, "#conn", "live", 20_000);
    assert.equal(await page.locator("#who-name").textContent(), operator, "still logged in: the token is the same");
    await waitText(page, "#health dd[data-key=uptime]", /^\d+ s$/);

    // New state after the restart reaches the old page.
    assert.equal((await api("/api/sim/inputs/in1/loopA", { level: 1 })).status, 200);
    await waitState(page, "#lane-in1 .loopA", "occupied");
    await waitText(page, "#events li[data-type=vehicle-arrived]", "North entry");
    await screenshot(page, "panel-after-restart");
    const statusEvents = await page.evaluate<number>(`window.lkPanel.statusEvents`);
    assert.ok(statusEvents < 120, `${statusEvents} status events over the whole test`);

    // A fresh page without the token is asked to log in, and sees the lanes once it has.
    const fresh = await newPanel();
    try {
      await fresh.page.goto(`${fx.base}/`);
      await waitText(fresh.page, "#notice", "需要登录");
      assert.equal(await fresh.page.locator("#lane-in1").count(), 0, "no status without the token");
      await screenshot(fresh.page, "panel-login-required");
      await logIn(fresh.page, "李雷", token);
      await waitState(fresh.page, "#conn", "live");
      await waitState(fresh.page, "#lane-in1 .loopA", "occupied");
      assert.equal(await fresh.page.locator("#notice").isVisible(), false);
    } finally {
      await fresh.context.close();
    }
    await api("/api/sim/inputs/in1/loopA", { level: 0 });
    assert.deepEqual(fx.pageErrors, [], "no script errors in the page");
    await context.close();
  });
});
