// The panel's lot card end to end: real boxes in child processes sharing one lot through a
// real MQTT broker, the real page in headless Chromium, read only through what a person sees.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { runCli, startCli, type RunningChild } from "../helpers/child.js";
import { demoRaw, tempDir } from "../helpers/demo-config.js";
import { browserUnavailable, launchChromium, screenshot } from "../helpers/browser.js";
import { startAedes, type AedesBroker } from "../helpers/aedes-broker.js";

const unavailable = browserUnavailable();
if (unavailable?.mustRun) {
  test("chromium is installed on CI", () => assert.fail(unavailable.reason));
}
const skip = unavailable ? unavailable.reason : false;

let dir: string;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = tempDir("lk-panel-lot-");
  browser = await launchChromium();
});

after(async () => {
  if (skip) return;
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A demo config of its own ports and store; `edit` adds the lot share and the box's identity. */
async function writeConfig(name: string, edit: (raw: Record<string, any>) => void): Promise<string> {
  const raw = demoRaw() as Record<string, any>;
  // Port 0: each box takes a free port itself and names it in its ready line (a port picked
  // here could be taken by a test beside this one before the box listens).
  raw.api.port = 0;
  // Port 0: the demo's platform emulator takes a free port and the box is pointed at it.
  raw.platform.baseUrl = "http://127.0.0.1:0/";
  raw.store.dir = join(dir, name, "store");
  raw.log = { level: "warn" };
  edit(raw);
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}

async function stopped(child: RunningChild, signal: NodeJS.Signals): Promise<void> {
  child.child.kill(signal);
  const { code } = await child.exited;
  assert.equal(code, 0, `stops cleanly on ${signal}; stderr:\n${child.stderr()}`);
}

async function openLot(url: string): Promise<Page> {
  const context = await browser.newContext({ locale: "zh-CN", viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url);
  await page.locator('#lot-view[data-state="live"]').waitFor({ state: "attached", timeout: 10_000 });
  assert.deepEqual(errors, [], "no script errors on the page");
  return page;
}

/** The box row of `deviceId` in the lot card, with the state it shows. */
async function boxState(page: Page, deviceId: string, online: "1" | "0", timeoutMs = 10_000): Promise<string> {
  const row = page.locator(`#lot-boxes li[data-device="${deviceId}"][data-online="${online}"]`);
  await row.waitFor({ state: "attached", timeout: timeoutMs });
  return row.locator(".lot-box-state").innerText();
}

test("--boxes takes 1 or 2 and says so otherwise", async () => {
  const answer = await runCli(["demo", "--boxes", "3"]);
  assert.equal(answer.code, 2);
  assert.match(answer.stderr, /--boxes takes 1 or 2/);
  const help = await runCli(["demo", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--boxes <1\|2>/);
});

test("lanekeeper demo --boxes 2: both gates' panels show the whole lot; Ctrl-C stops both boxes safely", { skip }, async () => {
  // At info: the stop's "outputs safe" line of each box is read below.
  const file = await writeConfig("two-gates", (raw) => (raw.log = { level: "info" }));
  const demo = startCli(["demo", "--boxes", "2", "--no-traffic", "--config", file]);
  try {
    const a = (await demo.waitFor(/box A north gate \(north-gate\): local API and panel on (http:\/\/[\d.:]+\/)/, 30_000))[1]!;
    const b = (await demo.waitFor(/box B south gate \(south-gate\): local API and panel on (http:\/\/[\d.:]+\/) \(lanes in2, out2\)/, 30_000))[1]!;
    assert.notEqual(a, b, "each box its own API port");
    for (const url of [a, b]) {
      const page = await openLot(url);
      assert.equal(await boxState(page, "north-gate", "1"), "在线");
      assert.equal(await boxState(page, "south-gate", "1"), "在线");
      assert.equal(await page.locator("#lot-free").innerText(), "50");
      await page.context().close();
    }
  } finally {
    await stopped(demo, "SIGINT");
  }
  assert.equal(demo.stdout().match(/stopped; outputs safe/g)?.length, 2, "both boxes say their outputs are safe");
});

test("the lot card on box A lists box B online, a car B let in, and B offline after B stops", { skip }, async () => {
  const broker: AedesBroker = await startAedes();
  const share = (deviceId: string) => (raw: Record<string, any>) => {
    raw.deviceId = deviceId;
    raw.lot.share = { enabled: true, mqtt: { url: broker.url, protocolVersion: 4, keepaliveS: 5 }, quietMs: 100 };
  };
  const boxA = startCli(["demo", "--no-traffic", "--config", await writeConfig("a", share("north-box"))]);
  const boxB = startCli([
    "demo",
    "--no-traffic",
    "--config",
    await writeConfig("b", (raw) => {
      share("south-box")(raw);
      raw.lanes[0].id = "in2";
      raw.lanes[1].id = "out2";
    }),
  ]);
  let bRunning = true;
  let stops: Array<PromiseSettledResult<void>> = [];
  try {
    const a = (await boxA.waitFor(/local API on (http:\/\/[\d.]+:\d+)/, 30_000))[1]!;
    const b = (await boxB.waitFor(/local API on (http:\/\/[\d.]+:\d+)/, 30_000))[1]!;
    const page = await openLot(`${a}/`);
    assert.equal(await boxState(page, "south-box", "1"), "在线");
    assert.match(await page.locator('#lot-boxes li[data-device="south-box"] .lot-box-lanes').innerText(), /in2 入口 · out2 出口/);
    assert.match(await page.locator('#lot-boxes li[data-device="north-box"]').innerText(), /本机/);

    // A car comes in at B (through B's simulated lane): A's card counts it.
    const token = (demoRaw() as { api: { token: string } }).api.token;
    const sim = (path: string, body: unknown) =>
      fetch(`${b}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    assert.equal((await sim("/api/sim/inputs/in2/loopA", { level: 1 })).status, 200);
    assert.equal((await sim("/api/sim/camera/in2", { plate: "粤A80001" })).status, 200);
    await page.locator("#lot-cars", { hasText: "1" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#lot-free").innerText(), "49");

    // The same card in English.
    await page.click("#lang");
    await page.locator("#lot h2", { hasText: "Lot" }).waitFor({ timeout: 5000 });
    assert.equal(await page.locator('#lot-boxes li[data-device="south-box"] .lot-box-state').innerText(), "online");
    await page.click("#lang");

    await stopped(boxB, "SIGTERM");
    bRunning = false;
    assert.equal(await boxState(page, "south-box", "0"), "离线");
    assert.equal(await boxState(page, "north-box", "1"), "在线");
    await screenshot(page, "panel-lot-b-offline");
    await page.context().close();
  } finally {
    // Both stopped and the broker closed whatever happened: a box whose stop fails must not
    // leave the other running.
    stops = await Promise.allSettled([bRunning ? stopped(boxB, "SIGTERM") : Promise.resolve(), stopped(boxA, "SIGTERM")]);
    await broker.close();
  }
  // Reached only when the test itself passed: then a failed stop fails it.
  const failedStop = stops.find((result) => result.status === "rejected");
  if (failedStop) throw failedStop.reason;
});
