// Scenario 11: a branded deployment ([site]: a name with markup and an emoji, a logo file, an
// accent colour, a contact address) at desktop and phone widths: the brand is on every page
// as text, the logo loads from the app, the accent colours the primary button and the
// spinner, nothing is wider than the screen, and axe finds nothing serious or critical. Also
// the privacy page, and Facebook's "#_=_" (which the development stand-in appends like
// Facebook) gone from the address bar, with JavaScript and without.
// `UPDATE_SCREENSHOTS=1 bash e2e/run.sh` copies the branded pages to docs/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, startApp } from '../lib/app.mjs';
import { DESKTOP, PHONE, launchBrowser, scenario } from '../lib/browser.mjs';
import { describe, seriousViolations } from '../lib/axe.mjs';
import { DIALOG, continueButton, expectErrorPage, expectPreloader, expectSignedIn, openConsent, PRELOADER } from '../lib/flow.mjs';

const NAME = 'Ünïcode <b>Books</b> & Co 📚';
const ACCENT = '#6b3fa0';
const ACCENT_RGB = 'rgb(107, 63, 160)';
const CONTACT = 'privacy@books.example';
// An open book on the accent colour: a file the app reads at start-up and serves itself.
const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="32" height="32">
  <rect width="32" height="32" rx="8" fill="${ACCENT}"/>
  <path fill="#fff" d="M6 9.5c3.5-1.2 6.8-.9 9 1.2v13c-2.2-1.9-5.5-2.2-9-1.1zm20 0c-3.5-1.2-6.8-.9-9 1.2v13c2.2-1.9 5.5-2.2 9-1.1z"/>
</svg>
`;

let browser;
let logoDir;
before(async () => {
  browser = await launchBrowser();
  logoDir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-e2e-brand-'));
  await writeFile(path.join(logoDir, 'books.svg'), LOGO);
});
after(async () => {
  await browser?.close();
  if (logoDir) await rm(logoDir, { recursive: true, force: true });
});

function brandConfig(extra = {}) {
  return {
    'site.name': NAME,
    // Absolute: the server runs from an empty folder of its own.
    'site.logo': path.join(logoDir, 'books.svg'),
    'site.accent_color': ACCENT,
    'site.contact_email': CONTACT,
    ...extra,
  };
}

async function assertFits(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${label}: page is ${scrollWidth}px wide on a ${innerWidth}px screen`);
}

/** The brand in the tab's title and the header, as text; the logo loaded from the app. */
async function assertBranded(page, label) {
  const title = await page.title();
  assert.ok(title.endsWith(` · ${NAME}`), `${label}: title ${JSON.stringify(title)}`);
  const brand = page.locator('header .brand');
  assert.equal(await brand.locator('span').innerText(), NAME, `${label}: the header shows the name as text`);
  assert.equal(await brand.locator('b').count(), 0, `${label}: the name's markup is not live`);
  assert.equal(await brand.getAttribute('href'), '/');
  const logo = brand.locator('img');
  assert.match(await logo.getAttribute('src'), /^\/static\/site\/logo\.svg\?v=[0-9a-f]{12}$/);
  assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), `${label}: the logo loads`);
  const height = (await logo.boundingBox()).height;
  assert.ok(height > 20 && height < 40, `${label}: the logo is header-sized (${height}px)`);
  assert.equal(await page.locator('footer').getByRole('link', { name: 'Privacy' }).getAttribute('href'), '/privacy');
}

async function axe(t, page, label, failures) {
  const { all, serious } = await seriousViolations(page);
  t.diagnostic(`${label}: ${all.length} violation(s), ${serious.length} serious or critical`);
  for (const line of describe(all).split('\n').filter(Boolean)) t.diagnostic(line);
  if (serious.length > 0) failures.push(`${label} (${page.url()}):\n${describe(serious)}`);
}

/** The address the browser shows, read from the page itself (history.replaceState included). */
function address(page) {
  return page.evaluate(() => window.location.href);
}

for (const [width, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`a branded deployment at ${width} width (${viewport.width}x${viewport.height})`, async (t) => {
    const failures = [];
    const options = {
      config: brandConfig({ 'dev_provider.latency_ms': 1500 }),
      context: { viewport, isMobile: width === 'phone', hasTouch: width === 'phone' },
    };
    await scenario(browser, `brand-${width}`, options, async (ctx) => {
      const page = await ctx.context.newPage();
      // Where the stand-in sends the browser back: Facebook's "#_=_" on the callback URL.
      const callbacks = [];
      page.on('response', (response) => {
        if (DIALOG.test(new URL(response.url()).pathname) && response.status() === 303) {
          callbacks.push(response.headers().location);
        }
      });

      await page.goto(ctx.url('/'));
      await continueButton(page).waitFor();
      await assertBranded(page, 'home');
      assert.equal(
        await continueButton(page).evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(24, 119, 242)',
        'the Facebook button keeps Facebook blue whatever the accent',
      );
      await assertFits(page, 'home');
      await axe(t, page, 'home', failures);
      await ctx.shot(page, 'home');

      await openConsent(page);
      await page.getByRole('button', { name: 'Allow' }).click();
      await expectPreloader(page);
      await page.waitForLoadState('domcontentloaded');
      assert.ok(callbacks.at(-1)?.endsWith('#_=_'), `the stand-in appends #_=_ like Facebook: ${callbacks}`);
      assert.doesNotMatch(await address(page), /#/, 'the preloader drops #_=_ from the address bar');
      await assertBranded(page, 'preloader');
      assert.equal(
        await page.locator('.spinner').evaluate((el) => getComputedStyle(el).borderTopColor), ACCENT_RGB,
        'the spinner turns in the accent colour',
      );
      await assertFits(page, 'preloader');
      await axe(t, page, 'preloader', failures);
      await ctx.shot(page, 'preloader');

      await expectSignedIn(page, 'Ada');
      assert.equal(await address(page), ctx.url('/'), 'signed in on / with no fragment');
      assert.equal(page.url(), ctx.url('/'));
      await assertBranded(page, 'signed-in');
      await assertFits(page, 'signed-in');
      await axe(t, page, 'signed-in', failures);
      await ctx.shot(page, 'signed-in');

      // Cancel: the callback goes straight to the error page, "#_=_" and all.
      await page.getByRole('button', { name: 'Log out' }).click();
      await openConsent(page);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await expectErrorPage(page, /You cancelled signing in with Facebook/);
      await page.waitForLoadState('domcontentloaded');
      assert.ok(callbacks.at(-1)?.endsWith('#_=_'), `the cancel carries #_=_ too: ${callbacks}`);
      assert.equal(await address(page), ctx.url('/error'), 'the error page drops #_=_');
      await assertBranded(page, 'error');
      const retry = page.getByRole('link', { name: 'Try again' });
      assert.equal(await retry.evaluate((el) => getComputedStyle(el).backgroundColor), ACCENT_RGB, 'the primary button wears the accent');
      assert.equal(await retry.evaluate((el) => getComputedStyle(el).color), 'rgb(255, 255, 255)');
      await assertFits(page, 'error');
      await axe(t, page, 'error', failures);
      await ctx.shot(page, 'error');

      await page.locator('footer').getByRole('link', { name: 'Privacy' }).click();
      await page.waitForURL((url) => url.pathname === '/privacy');
      await page.getByRole('heading', { level: 1, name: 'Privacy' }).waitFor();
      await assertBranded(page, 'privacy');
      const text = await page.locator('main').innerText();
      assert.ok(text.includes(`What ${NAME} keeps about you`), text);
      assert.match(text, /never stored or logged/);
      assert.equal(await page.getByRole('link', { name: CONTACT }).getAttribute('href'), `mailto:${CONTACT}`);
      assert.equal(await page.getByRole('link', { name: 'Delete my account' }).getAttribute('href'), '/account/delete');
      await assertFits(page, 'privacy');
      await axe(t, page, 'privacy', failures);
      await ctx.shot(page, 'privacy');

      await page.goto(ctx.url('/no-such-page'));
      await page.getByRole('heading', { name: 'Page not found' }).waitFor();
      await assertBranded(page, 'not-found');
      await assertFits(page, 'not-found');
      await axe(t, page, 'not-found', failures);
      await ctx.shot(page, 'not-found');
    });
    assert.equal(failures.length, 0, `serious or critical accessibility violations:\n${failures.join('\n')}`);
  });
}

test('without JavaScript "#_=_" stays on the first preloader and is gone once signed in', async () => {
  const config = brandConfig({ 'dev_provider.latency_ms': 1500, 'login.poll_interval_ms': 1000 });
  await scenario(browser, 'brand-no-javascript', { config, context: { javaScriptEnabled: false } }, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await openConsent(page);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(PRELOADER);
    await page.locator('#status').waitFor();
    // No script can touch the address bar: the browser carried the fragment across the
    // callback's redirect (which is why the pages remove it with a script)…
    assert.ok(page.url().endsWith('/preloader#_=_'), page.url());
    await ctx.shot(page, 'preloader-with-fragment');
    // …and the <noscript> refresh names /preloader explicitly, so the next load drops it.
    await expectSignedIn(page, 'Ada');
    assert.equal(page.url(), ctx.url('/'));
    await ctx.shot(page, 'signed-in');
  });
});

test('mounted below /auth: every request of a branded sign-in stays below it, scripts included', async () => {
  // loginwith mounted below a path: public_url names it, and the server is ready when
  // /auth answers (/ is not loginwith's then).
  const start = async (config, options) => {
    const port = await freePort();
    return startApp(
      { ...config, 'server.public_url': `http://127.0.0.1:${port}/auth` },
      { ...options, port, readyPath: '/auth' },
    );
  };
  const config = brandConfig({ 'dev_provider.latency_ms': 1500 });
  await scenario(browser, 'brand-mounted', { config, start }, async (ctx) => {
    const page = await ctx.context.newPage();
    const origin = new URL(ctx.url('/')).origin;
    const outside = [];
    let statusPolls = 0;
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin !== origin) return;
      if (!url.pathname.startsWith('/auth/') && url.pathname !== '/auth') outside.push(request.url());
      if (url.pathname === '/auth/get-status') statusPolls += 1;
    });
    await page.goto(ctx.url('/auth'));
    await continueButton(page).waitFor();
    assert.equal(await page.locator('header .brand').getAttribute('href'), '/auth');
    assert.ok(await page.locator('header .brand img').evaluate((img) => img.complete && img.naturalWidth > 0), 'the logo loads below /auth');
    assert.equal(
      await page.getByRole('heading', { level: 1, name: 'Sign in' }).evaluate((el) => getComputedStyle(el).fontSize), '26px',
      'app.css is applied below /auth',
    );
    await ctx.shot(page, 'home');
    await continueButton(page).click();
    await page.waitForURL((url) => url.pathname === '/auth/dev/facebook/dialog/oauth');
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    assert.equal(
      await page.getByRole('button', { name: 'Allow' }).evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(24, 119, 242)',
      "the development provider's consent page is styled below /auth",
    );
    await ctx.shot(page, 'consent');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.pathname === '/auth/preloader');
    await page.locator('#status').waitFor();
    await ctx.shot(page, 'preloader');
    // The preloader's script asks /auth/get-status and then goes to /auth/success.
    await page.waitForURL((url) => url.pathname === '/auth');
    await page.getByRole('heading', { level: 1, name: 'Hi, Ada!' }).waitFor();
    assert.equal(await address(page), ctx.url('/auth'), 'signed in on /auth, no fragment');
    assert.ok(statusPolls >= 1, `the preloader polled /auth/get-status (${statusPolls})`);
    await ctx.shot(page, 'signed-in');
    await page.locator('footer').getByRole('link', { name: 'Privacy' }).click();
    await page.waitForURL((url) => url.pathname === '/auth/privacy');
    assert.equal(await page.getByRole('link', { name: 'Delete my account' }).getAttribute('href'), '/auth/account/delete');
    await ctx.shot(page, 'privacy');
    assert.deepEqual(outside, [], 'requests outside /auth');
  });
});
