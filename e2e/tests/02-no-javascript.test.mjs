// Scenario 2: JavaScript off. The preloader's <noscript> meta refresh reloads the page, and
// the server forwards to /success (then /) by itself once the exchange is done.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { DIALOG, expectSignedIn, expectSignedOut, continueButton, PRELOADER } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('sign in without JavaScript through the <noscript> refresh', async () => {
  const config = {
    // Slow enough (about 3 s for token + /me) that the preloader is seen and reloads at
    // least once: with poll_interval_ms at 1000 the refresh comes every second.
    'dev_provider.latency_ms': 1500,
    'login.poll_interval_ms': 1000,
  };
  await scenario(browser, 'no-javascript', { config, context: { javaScriptEnabled: false } }, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await expectSignedOut(page);
    await ctx.shot(page, 'home');

    await continueButton(page).click();
    await page.waitForURL(DIALOG);
    await ctx.shot(page, 'consent');

    // Count the preloader's loads: the meta refresh must really reload it.
    let preloaderLoads = 0;
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/preloader' && response.status() === 200) preloaderLoads += 1;
    });
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(PRELOADER);
    await page.locator('#status').waitFor();
    assert.match(await page.locator('#status').innerText(), /Talking to Facebook/);
    assert.equal(
      await page.locator('head meta[http-equiv="refresh"]').count(), 1,
      'the <noscript> refresh is live when scripting is off',
    );
    await ctx.shot(page, 'preloader');

    // No script runs: only the refresh and the server's redirects can get us home.
    await expectSignedIn(page, 'Ada');
    await ctx.shot(page, 'signed-in');
    assert.ok(preloaderLoads >= 2, `the preloader reloaded itself (${preloaderLoads} loads)`);

    await page.getByRole('button', { name: 'Log out' }).click();
    await expectSignedOut(page);
    await ctx.shot(page, 'signed-out');
  });
});
