// Headless Chromium from Debian (/usr/bin/chromium) through playwright-core: never a
// downloaded browser. A browser that cannot start fails the test; nothing is skipped.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { E2E_DIR, startApp } from './app.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = path.join(E2E_DIR, 'artifacts');

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** Launches Chromium (with `args` besides the suite's own) or throws an error that says how to fix it. */
export async function launchBrowser({ args = [] } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install it with \`apt-get install -y chromium chromium-driver\` ` +
        '(or point CHROMIUM_PATH at a Chromium binary). The end-to-end suite does not skip without a browser.',
    );
  }
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...LAUNCH_ARGS, ...args],
      timeout: 30_000,
    });
  } catch (error) {
    throw new Error(`Chromium at ${CHROMIUM} did not start: ${error.message}`, { cause: error });
  }
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * Runs one scenario: a fresh artifacts folder, its own loginwith instance configured with
 * `config`, a fresh browser context (its own cookies), screenshots of every page through
 * `ctx.shot(name)`. On failure the last screenshot is taken and the server's output is
 * attached to the error; the server log is always kept next to the screenshots. `start`
 * replaces startApp (same arguments, same result: `url` is where the browser goes), for
 * scenarios with more than loginwith.
 */
export async function scenario(browser, name, { config = {}, context: contextOptions = {}, start = startApp } = {}, body) {
  const dir = path.join(ARTIFACTS, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const app = await start(config, { logFile: path.join(dir, 'server.log') });
  const context = await browser.newContext({ viewport: DESKTOP, ...contextOptions });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(15_000);
  let count = 0;
  const ctx = {
    app,
    context,
    url: (p = '/') => app.url + p,
    /** Saves a PNG of `page` as artifacts/<scenario>/NN-<label>.png. */
    async shot(page, label, options = {}) {
      count += 1;
      const file = path.join(dir, `${String(count).padStart(2, '0')}-${label}.png`);
      await page.screenshot({ path: file, fullPage: true, animations: 'disabled', ...options });
      return file;
    },
  };
  try {
    await body(ctx);
  } catch (error) {
    for (const page of context.pages()) {
      await ctx.shot(page, 'failure').catch(() => {});
    }
    error.message += `\n--- loginwith output (${name}) ---\n${app.log().slice(-6000)}`;
    throw error;
  } finally {
    await context.close().catch(() => {});
    await app.stop();
  }
}
