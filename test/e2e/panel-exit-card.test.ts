// The exit card end to end: the real box in a child process (both lanes take the camera's HTTP
// push, so each read carries its picture), the real page in headless Chromium on a 1280×800
// booth screen and a 390×844 phone. A car misread at the exit waits on the flat charge for a
// car with no entry record; the card shows its bill and the exit photo; the attendant types the
// right plate on the card, and the card shows the right stay: its entry time and lane, the
// stay, the bill's lines and the photos of both reads.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { screenshot } from "../helpers/browser.js";
import { PanelFixture, assertNoSideScroll, booth, browserSuite, logIn, panelOperator as operator, phone, until, waitText } from "../helpers/panel-browser.js";
import { buildAlarmInfoPlate } from "../../src/io/camera/http-push.js";
import { formatWireTime } from "../../src/platform/wire.js";

let fx: PanelFixture;
let plateIds = 0;

/** A real JPEG of a plate, drawn by the browser itself (a camera picture stand-in). */
async function plateJpeg(page: Page, text: string, colour: string): Promise<string> {
  const dataUrl = await page.evaluate(`(() => {
    const canvas = document.createElement("canvas");
    canvas.width = 480;
    canvas.height = 270;
    const g = canvas.getContext("2d");
    g.fillStyle = "#3a3f47";
    g.fillRect(0, 0, 480, 270);
    g.fillStyle = ${JSON.stringify(colour)};
    g.fillRect(120, 170, 240, 64);
    g.fillStyle = "#fff";
    g.font = "bold 40px sans-serif";
    g.textAlign = "center";
    g.fillText(${JSON.stringify(text)}, 240, 216);
    return canvas.toDataURL("image/jpeg", 0.8);
  })()`);
  return String(dataUrl).replace(/^data:image\/jpeg;base64,/, "");
}

/** The camera's push with its picture, on the real route. */
async function push(laneId: string, plate: string, imageFile: string): Promise<void> {
  const body = buildAlarmInfoPlate({ plate, plateId: `e2e${++plateIds}`, atMs: Date.now(), imageFile });
  const res = await fetch(`${fx.base}/camera/${laneId}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  assert.equal(res.status, 200, await res.text());
}

/** The photo in the figure has loaded as an image (not a broken link). */
async function photoShown(page: Page, selector: string): Promise<void> {
  await page.locator(`${selector} img`).waitFor({ state: "visible", timeout: 10_000 });
  await until(async () => (await page.locator(`${selector} img`).evaluate((img) => (img as { naturalWidth: number }).naturalWidth)) > 0, `${selector} loaded`);
}

browserSuite("the exit card in headless Chromium", () => {
  let context: BrowserContext;
  let page: Page;

  before(async () => {
    fx = await PanelFixture.open("lk-panel-exit-", { mutate: (raw) => (raw.lanes[1].camera = "http") });
    ({ context, page } = await fx.newPage(booth));
    await logIn(page);
  });

  after(async () => {
    await fx?.close();
  });

  test("a misread car at the exit: its bill and photo; corrected on the card, the right stay with its breakdown and both photos", async () => {
    // The car comes in, photographed by the entry camera.
    await fx.loop("in1", "loopA", 1);
    await push("in1", "粤B23456", await plateJpeg(page, "粤B·23456", "#1d4ed8"));
    await fx.passThrough("in1", "粤B23456", "vehicle-entered");
    const stay = (await fx.api<{ inPark: Array<{ recordNo: string; enterAtMs: number; plate: string }> }>("/api/records?plate=%E7%B2%A4B23456")).body.inPark[0]!;

    // At the exit the camera reads another plate: no stay, the flat charge for a car with no entry record.
    await fx.loop("out1", "loopA", 1);
    await push("out1", "粤E99999", await plateJpeg(page, "粤B·23456", "#1d4ed8"));
    await waitText(page, "#lane-out1 .phase", "待缴费");
    await waitText(page, "#lane-out1 .plate", "粤E99999");
    await waitText(page, "#lane-out1 .fee", "10.00 元");
    await waitText(page, "#lane-out1 .bill-lines tr[data-line=due]", "10.00 元");
    await waitText(page, "#lane-out1 .card-enter", "无入场记录");
    await waitText(page, "#lane-out1 .card-payby", "平台二维码 · 扫码枪 · 现金");
    await photoShown(page, "#lane-out1 .photo-exit");
    await waitText(page, "#lane-out1 .photo-entry .no-photo", "无入场记录");
    await screenshot(page, "panel-exit-card-misread-1280x800");

    // A correction needs a reason: the card asks, nothing is sent.
    await page.fill("#lane-out1 .correct-plate", "粤B23456");
    await page.click("#lane-out1 [data-correct]");
    await waitText(page, "#lane-out1 .result[data-outcome=refused]", "更正车牌须填写原因");
    assert.equal((await fx.events()).filter((e) => e.type === "plate-corrected").length, 0);

    await page.fill("#lane-out1 .correct-reason", "识别错误");
    await page.click("#lane-out1 [data-correct]");
    await waitText(page, "#lane-out1 .result[data-outcome=ok]", "已执行: 车牌已更正为 粤B23456");
    await waitText(page, "#lane-out1 .plate", "粤B23456");
    await waitText(page, "#lane-out1 .read-plate", "相机识别为: 粤E99999");
    await waitText(page, "#lane-out1 .fee", "5.00 元");
    await waitText(page, "#lane-out1 .bill-lines tr[data-line=payable]", "5.00 元");
    await waitText(page, "#lane-out1 .bill-lines tr[data-line=prepaid]", "0.00 元");
    await waitText(page, "#lane-out1 .bill-lines tr[data-line=due]", "5.00 元");
    await waitText(page, "#lane-out1 .card-enter", formatWireTime(stay.enterAtMs, "Asia/Shanghai"));
    await waitText(page, "#lane-out1 .card-entry-lane", "North entry");
    await waitText(page, "#lane-out1 .card-stay", /\d+ s|\d+ min/);
    await photoShown(page, "#lane-out1 .photo-exit");
    await photoShown(page, "#lane-out1 .photo-entry");
    const audit = (await fx.events()).filter((e) => e.type === "plate-corrected");
    assert.deepEqual(
      audit.map((e) => [e.plate, e.readPlate, e.operator, e.reason]),
      [["粤B23456", "粤E99999", operator, "识别错误"]],
    );
    await screenshot(page, "panel-exit-card-1280x800");
    await assertNoSideScroll(page, "the exit card at 1280×800");

    // English: the card's words follow the page.
    await page.click("#lang");
    await waitText(page, "#lane-out1 .bill-lines tr[data-line=due]", "Due");
    await waitText(page, "#lane-out1 .card-payby", "platform QR · scanner · cash");
    await page.click("#lang");

    // On a phone the card fits.
    const small = await fx.newPage(phone);
    try {
      await logIn(small.page);
      await photoShown(small.page, "#lane-out1 .photo-exit");
      await waitText(small.page, "#lane-out1 .bill-lines tr[data-line=due]", "5.00 元");
      await small.page.locator("#lane-out1 .exit-card").scrollIntoViewIfNeeded();
      await screenshot(small.page, "panel-exit-card-390x844");
      await assertNoSideScroll(small.page, "the exit card on a phone");
    } finally {
      await small.context.close();
    }

    // Cash for the corrected bill; the car leaves under the right stay.
    await page.click("#lane-out1 [data-command=cash-paid]");
    await waitText(page, "#lane-out1 .result[data-outcome=ok]", "已执行: 现金已收");
    await fx.passThrough("out1", "粤B23456", "vehicle-left");
    const payment = (await fx.events()).find((e) => e.type === "payment" && e.plate === "粤B23456");
    assert.equal(payment?.feeFen, 500);
    assert.equal(payment?.recordNo, stay.recordNo);
    await waitText(page, "#lane-out1 .plate", "—");
    assert.equal(await page.locator("#lane-out1 .exit-card").isVisible(), false, "no card once the car is gone");
    assert.deepEqual(fx.pageErrors, [], "no script errors in the page");
    await context.close();
  });
});
