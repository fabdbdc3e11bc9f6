// Scenario 8: the binary on its own. The server runs from an empty temporary folder (as every
// scenario's does, see lib/app.mjs), so the stylesheet, the preloader's script and the images
// can only come from the binary: the page is styled, the preloader polls, and a slow sign-in
// ends signed in. Every file is fetched under its versioned URL, cacheable for a year.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { continueButton, expectPreloader, expectSignedIn, openConsent } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const TYPES = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
};

/** A computed style property of the first element matching `selector`. */
function style(page, selector, property) {
  return page.locator(selector).first().evaluate((el, name) => getComputedStyle(el)[name], property);
}

test('8: from an empty folder, a slow sign-in is styled, shows the preloader and ends signed in', async () => {
  // 1.5 s on the token endpoint and 1.5 s on /me: the preloader waits about 3 s.
  await scenario(browser, 'self-contained', { config: { 'dev_provider.latency_ms': 1500 } }, async (ctx) => {
    const page = await ctx.context.newPage();
    const files = [];
    page.on('response', (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith('/static/')) {
        const headers = response.headers();
        files.push({ url: url.pathname + url.search, status: response.status(), headers });
      }
    });
    const longPollSent = page.waitForRequest((request) => {
      const url = new URL(request.url());
      return url.pathname === '/get-status' && url.searchParams.has('wait');
    });

    await page.goto(ctx.url('/'));
    const button = continueButton(page);
    await button.waitFor();
    // Only app.css makes these so.
    assert.equal(await style(page, 'body', 'display'), 'flex', 'app.css applies');
    assert.equal(await button.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(24, 119, 242)');
    assert.ok(await button.locator('img').evaluate((img) => img.complete && img.naturalWidth > 0), 'the logo loads');
    await ctx.shot(page, 'home');

    await openConsent(page);
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    assert.equal(await style(page, '.spinner', 'animationName'), 'spin', 'the spinner turns');
    await ctx.shot(page, 'preloader');
    // Only preloader.js long-polls: the script came from the binary and runs.
    await longPollSent;

    await expectSignedIn(page, 'Ada');
    await ctx.shot(page, 'signed-in');

    const kinds = new Set(files.map((file) => file.url.split('?')[0].split('.').pop()));
    assert.deepEqual([...kinds].sort(), ['css', 'js', 'svg'], `files fetched: ${files.map((f) => f.url).join(' ')}`);
    for (const file of files) {
      const kind = file.url.split('?')[0].split('.').pop();
      assert.equal(file.status, 200, file.url);
      assert.match(file.url, /\?v=[0-9a-f]{12}$/, `${file.url}: a versioned URL`);
      assert.equal(file.headers['content-type'], TYPES[kind], file.url);
      assert.equal(file.headers['cache-control'], 'public, max-age=31536000, immutable', file.url);
      assert.match(file.headers.etag, /^"[0-9a-f]{64}(-[a-z]+)?"$/, `${file.url}: a strong ETag`);
    }
    // The folder held nothing for it to read: it only ever gets the database.
    const made = (await readdir(ctx.app.dir)).filter((name) => !name.startsWith('e2e.db'));
    assert.deepEqual(made, [], 'the server wrote nothing else in its folder');
  });
});
