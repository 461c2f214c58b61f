import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";

/**
 * Chromium from the distribution's packages (no browser downloads): `.ci/run` installs the
 * `chromium` package. LANEKEEPER_CHROMIUM points elsewhere if a machine keeps it elsewhere.
 */
export const chromiumPath = process.env.LANEKEEPER_CHROMIUM ?? "/usr/bin/chromium";

/** Screenshots for a person to look at; the folder is gitignored. */
export const artifactsDir = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

/**
 * Why the browser tests cannot run here, or undefined when they can. On CI a missing browser
 * is a failure (the caller asserts on `mustRun`), elsewhere a written skip.
 */
export function browserUnavailable(): { reason: string; mustRun: boolean } | undefined {
  if (existsSync(chromiumPath)) return undefined;
  return process.env.CI
    ? { reason: `chromium not found at ${chromiumPath}; .ci/run must install the chromium package`, mustRun: true }
    : { reason: "chromium not installed; .ci/run installs it", mustRun: false };
}

/** Headless Chromium, quiet: no network besides the pages we open (only loopback here). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Saves a full-page screenshot under test-artifacts/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
