// The booth panel end to end: the real box in a child process (`lanekeeper demo` with its
// platform emulator), the real page in headless Chromium, on a 1280×800 booth screen and a
// 390×844 phone. Refusals read in the page's language, every open by hand has a reason
// (picked from the list or typed), F8 and F9 do the attendant's two daily actions, and the
// records view searches the stays and shows one stay's history in the lot's time zone.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { screenshot } from "../helpers/browser.js";
import { PanelFixture, assertNoSideScroll, booth, browserSuite, logIn, panelOperator as operator, phone, until, waitText } from "../helpers/panel-browser.js";
import { formatWireTime } from "../../src/platform/wire.js";

let fx: PanelFixture;
const api: PanelFixture["api"] = (path, body) => fx.api(path, body);
const events = () => fx.events();
const lane = (laneId: string) => fx.lane(laneId);
const arrive = (laneId: string, plate: string) => fx.arrive(laneId, plate);
const passThrough = (laneId: string, plate: string, leftEvent: string) => fx.passThrough(laneId, plate, leftEvent);
const newPage = (viewport: { width: number; height: number }) => fx.newPage(viewport);

/** Text of a result line with no English words in it (numbers and codes such as 401 may stay). */
async function assertChineseOnly(page: Page, selector: string): Promise<void> {
  const text = (await page.locator(selector).first().textContent()) ?? "";
  assert.doesNotMatch(text, /[a-z]{3,}/, `${selector}: "${text}" shows English inside the Chinese page`);
}

browserSuite("the booth panel in headless Chromium", () => {
  let page: Page;
  let context: BrowserContext;

  before(async () => {
    fx = await PanelFixture.open("lk-panel-booth-");
    ({ context, page } = await newPage(booth));
  });

  after(async () => {
    await fx?.close();
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
    assert.deepEqual(fx.pageErrors, [], "no script errors in the page");
    await context.close();
  });
});
