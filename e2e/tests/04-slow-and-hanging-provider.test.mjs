// Scenario 4: a slow Facebook (the preloader is seen, then the sign-in completes) and a
// Facebook that never answers (the exchange times out, the error page says so).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { expectErrorPage, expectPreloader, expectSignedIn, expectSignedOut, homeThenConsent, openConsent } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('4a: slow provider: the preloader shows while waiting, then signed in', async () => {
  // 3 s on the token endpoint and 3 s on /me: about 6 s of waiting.
  await scenario(browser, 'slow-provider', { config: { 'dev_provider.latency_ms': 3000 } }, async (ctx) => {
    const page = await homeThenConsent(ctx);

    // What the preloader asked and heard. The last answer's body may be gone by the time we
    // read it (the page has moved on), so the way out is checked through the requests.
    const polls = [];
    const requested = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      requested.push(url.pathname + url.search);
    });
    page.on('response', async (response) => {
      if (new URL(response.url()).pathname === '/get-status') {
        polls.push(await response.text().catch(() => '(page moved on)'));
      }
    });
    const longPollSent = page.waitForRequest((request) => {
      const url = new URL(request.url());
      return url.pathname === '/get-status' && url.searchParams.has('wait');
    });
    const clicked = Date.now();
    await page.getByRole('button', { name: 'Allow' }).click();
    const status = await expectPreloader(page);
    assert.equal(await status.getAttribute('aria-live'), 'polite', 'status changes are announced');
    assert.ok(await page.locator('.spinner').isVisible(), 'the spinner shows');
    await ctx.shot(page, 'preloader');
    // The page waits on a long poll (/get-status?wait=N), which the server answers the
    // moment the exchange ends; while it waits, the preloader stays.
    await longPollSent;
    assert.match(page.url(), /\/preloader/);
    await ctx.shot(page, 'preloader-still-waiting');

    await expectSignedIn(page, 'Ada');
    const waited = Date.now() - clicked;
    assert.ok(waited >= 5500, `the sign-in waited for both slow calls (${waited} ms)`);
    assert.ok(!polls.includes('error'), `never an error: ${polls.join(',')}`);
    const firstPoll = requested.findIndex((r) => r.startsWith('/get-status'));
    const success = requested.indexOf('/success');
    assert.ok(firstPoll >= 0 && success > firstPoll, `left through /success after polling: ${requested.join(' ')}`);
    await ctx.shot(page, 'signed-in');
  });
});

test('4b: hanging provider: the exchange times out and the error page says so', async () => {
  const config = { 'dev_provider.fault': 'hang', 'login.exchange_timeout_secs': 2 };
  await scenario(browser, 'hanging-provider', { config }, async (ctx) => {
    const page = await homeThenConsent(ctx);
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    await ctx.shot(page, 'preloader');

    await expectErrorPage(page, /Facebook did not answer in time/);
    await ctx.shot(page, 'error-timeout');
    assert.equal(await page.getByRole('link', { name: 'Try again' }).getAttribute('href'), '/authorize/facebook');

    // Not signed in, and the home page offers the button again.
    await page.getByRole('link', { name: 'Back to the home page' }).click();
    await expectSignedOut(page);
  });
});

test('4c: the preloader says when it is slow, then gives up and says what to do', async () => {
  // The exchange may take 30 s, but the page only waits 4 s (login.poll_limit_secs): it
  // says it is slow after half of that, then hands over to the error page.
  const config = { 'dev_provider.fault': 'hang', 'login.exchange_timeout_secs': 30, 'login.poll_limit_secs': 4 };
  await scenario(browser, 'preloader-gives-up', { config }, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await openConsent(page);
    await page.getByRole('button', { name: 'Allow' }).click();
    const status = await expectPreloader(page);
    await ctx.shot(page, 'preloader');
    // The live region's text changes (and is announced).
    await page.waitForFunction(() => /taking longer than usual/.test(document.getElementById('status').textContent));
    assert.match(await status.innerText(), /Facebook is taking longer than usual/);
    await ctx.shot(page, 'preloader-slow');

    await expectErrorPage(page, /Facebook is taking longer than usual to answer\. Please try again/);
    await ctx.shot(page, 'error-gave-up');
    await page.getByRole('link', { name: 'Try again' }).click();
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    await ctx.shot(page, 'consent-again');
  });
});
