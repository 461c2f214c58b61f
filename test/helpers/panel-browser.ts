import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { startCli, type RunningChild } from "./child.js";
import { demoRaw, tempDir } from "./demo-config.js";
import { browserUnavailable, launchChromium } from "./browser.js";

/*
 * What the booth panel's browser tests share: the real box in a child process (`lanekeeper
 * demo --no-traffic` with its platform emulator) on private ports and a temp store, headless
 * Chromium, the simulator driven through the box's API, and the page's usual waits.
 */

export const panelToken = "demo-token-change-me-0001";
export const panelOperator = "王芳";
export const booth = { width: 1280, height: 800 };
export const phone = { width: 390, height: 844 };

/** A suite that needs Chromium: a failure on CI without it, a written skip elsewhere. */
export function browserSuite(title: string, body: () => void): void {
  const unavailable = browserUnavailable();
  if (unavailable?.mustRun) test(`chromium is installed: ${title}`, () => assert.fail(unavailable.reason));
  // A test (not a suite) so the skip shows in the run's "N skipped" count.
  else if (unavailable) test(title, { skip: unavailable.reason }, () => undefined);
  else describe(title, body);
}

export interface PanelConfigOptions {
  openReads?: "loopback" | "never";
  /** Further edits of the raw demo config. */
  mutate?: (raw: Record<string, any>) => void;
}

export interface PanelBox {
  child: RunningChild;
  base: string;
}

async function startBox(file: string): Promise<PanelBox> {
  const child = startCli(["demo", "--no-traffic", "--config", file]);
  const match = await child.waitFor(/local API on (http:\/\/[\d.]+:\d+)/, 30_000);
  return { child, base: match[1]! };
}

/** One box, one browser, one temp dir; `close()` ends all three. */
export class PanelFixture {
  readonly pageErrors: string[] = [];
  private configs = 0;

  private constructor(
    readonly dir: string,
    readonly apiPort: number,
    public box: PanelBox,
    readonly browser: Browser,
  ) {}

  static async open(prefix: string, options: PanelConfigOptions = {}): Promise<PanelFixture> {
    const dir = tempDir(prefix);
    // Port 0: the box takes a free port itself and names it in its ready line. A port picked
    // here and handed over could be taken by a test running beside this one in between.
    const file = await writePanelConfig(dir, 0, options, "lanekeeper.json");
    const [box, browser] = await Promise.allSettled([startBox(file), launchChromium()]);
    if (box.status === "rejected" || browser.status === "rejected") {
      // Whichever did start is ended, or it keeps the test file alive until its timeout.
      if (browser.status === "fulfilled") await browser.value.close().catch(() => undefined);
      if (box.status === "fulfilled" && box.value.child.child.exitCode === null) {
        box.value.child.child.kill("SIGTERM");
        await box.value.child.exited;
      }
      throw box.status === "rejected" ? box.reason : (browser as PromiseRejectedResult).reason;
    }
    return new PanelFixture(dir, Number(new URL(box.value.base).port), box.value, browser.value);
  }

  get base(): string {
    return this.box.base;
  }

  /** The same box again (same port and store) with another config; the old one must be stopped. */
  async restart(options: PanelConfigOptions): Promise<void> {
    this.box = await startBox(await writePanelConfig(this.dir, this.apiPort, options, `lanekeeper-${++this.configs}.json`));
  }

  /** SIGTERM, and the box must exit 0. */
  async stopBox(): Promise<void> {
    this.box.child.child.kill("SIGTERM");
    const { code } = await this.box.child.exited;
    assert.equal(code, 0, `the box stops cleanly on SIGTERM; stderr:\n${this.box.child.stderr()}`);
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    if (this.box.child.child.exitCode === null) {
      this.box.child.child.kill("SIGTERM");
      await this.box.child.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * A page in its own context. The computer is set to another zone than the lot: the page must
   * still show the lot's times. `goto: false` leaves the page blank.
   */
  async newPage(viewport: { width: number; height: number } = booth, options: { goto?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await this.browser.newContext({ timezoneId: "America/New_York", locale: "zh-CN", viewport });
    const page = await context.newPage();
    page.on("pageerror", (error) => this.pageErrors.push(String(error)));
    if (options.goto !== false) {
      await page.goto(`${this.base}/`);
      await page.locator('#conn[data-state="live"]').waitFor({ state: "attached", timeout: 10_000 });
    }
    return { context, page };
  }

  // ---- the box's API ---------------------------------------------------------------------------

  /** GET, or POST with a body; the token unless `auth: false`. */
  async api<T = any>(path: string, body?: unknown, options: { auth?: boolean } = {}): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.base}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { "content-type": "application/json", ...(options.auth === false ? {} : { authorization: `Bearer ${panelToken}` }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  }

  async events(): Promise<Array<{ type: string; plate?: string; command?: string; reason?: string; operator?: string; [key: string]: unknown }>> {
    return (await this.api("/api/status")).body.events;
  }

  async lane(laneId: string): Promise<{ id: string; barrier: string; phase: string; loops: Record<string, boolean>; vehicle?: any }> {
    return (await this.api<{ lanes: Array<{ id: string; barrier: string; phase: string; loops: Record<string, boolean> }> }>("/api/status")).body.lanes.find(
      (l) => l.id === laneId,
    )!;
  }

  /** Sets a simulated loop and waits until the lane's debounced state follows it. */
  async loop(laneId: string, input: string, level: 0 | 1): Promise<void> {
    assert.equal((await this.api(`/api/sim/inputs/${laneId}/${input}`, { level })).status, 200);
    await until(async () => Boolean((await this.lane(laneId)).loops[input]) === (level === 1), `${laneId}.${input} = ${level}`);
  }

  /** A car on the arming loop, read by the lane's simulated camera. */
  async arrive(laneId: string, plate: string): Promise<void> {
    await this.loop(laneId, "loopA", 1);
    assert.equal((await this.api(`/api/sim/camera/${laneId}`, { plate })).status, 200);
  }

  /** The car drives through the open arm and off the loops. */
  async passThrough(laneId: string, plate: string, leftEvent: string): Promise<void> {
    await until(async () => ["opening", "open"].includes((await this.lane(laneId)).barrier), `${laneId} open`);
    await this.loop(laneId, "loopB", 1);
    await this.loop(laneId, "loopA", 0);
    await this.loop(laneId, "loopB", 0);
    // The status keeps the last 50 events: remember every one seen, so a burst between two
    // polls on a loaded machine cannot hide the one awaited; the box may be slow, not wrong.
    const seen: Array<{ type: string; plate?: string }> = [];
    await until(
      async () => {
        seen.push(...(await this.events()));
        return seen.some((e) => e.type === leftEvent && e.plate === plate);
      },
      `${leftEvent} ${plate}`,
      20_000,
    );
  }
}

/**
 * The demo config on private ports and the fixture's store; 5 元 from the first minute, so
 * every exit owes money.
 */
async function writePanelConfig(dir: string, apiPort: number, options: PanelConfigOptions, name: string): Promise<string> {
  const raw = demoRaw() as Record<string, any>;
  raw.api.port = apiPort;
  if (options.openReads) raw.api.openReads = options.openReads;
  // Port 0: the demo's platform emulator takes a free port and the box is pointed at it.
  raw.platform.baseUrl = "http://127.0.0.1:0/";
  raw.store.dir = join(dir, "store");
  raw.log = { level: "warn" };
  raw.fees.tariffs.standard = {
    name: "5 yuan the first hour from the first minute",
    free: { minutes: 0 },
    segments: [{ name: "all day", from: "00:00", to: "24:00", firstPeriod: { minutes: 60, priceFen: 500 }, unitMinutes: 60, unitPriceFen: 100, rounding: "up" }],
  };
  options.mutate?.(raw);
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}

export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until `selector` matches a visible element whose text contains `text`. */
export async function waitText(page: Page, selector: string, text: string | RegExp, timeoutMs = 10_000): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ state: "visible", timeout: timeoutMs });
}

export async function waitState(page: Page, selector: string, state: string, timeoutMs = 10_000): Promise<void> {
  await page.locator(`${selector}[data-state="${state}"]`).first().waitFor({ state: "attached", timeout: timeoutMs });
}

/** Fills the login form and submits it (`wait`: until the page says who is logged in). */
export async function logIn(page: Page, options: { operator?: string; token?: string; wait?: boolean } = {}): Promise<void> {
  const operator = options.operator ?? panelOperator;
  await page.fill("#operator", operator);
  await page.fill("#token", options.token ?? panelToken);
  await page.click("#login button[type=submit]");
  if (options.wait !== false) await waitText(page, "#who-name", operator);
}

/** The page fits its window: nothing to scroll sideways. */
export async function assertNoSideScroll(page: Page, what: string): Promise<void> {
  const [scrollWidth, innerWidth] = await page.evaluate<[number, number]>(`[document.scrollingElement.scrollWidth, window.innerWidth]`);
  assert.ok(scrollWidth <= innerWidth, `${what}: scrollWidth ${scrollWidth} > innerWidth ${innerWidth}`);
}
