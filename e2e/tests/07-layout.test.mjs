// Layout at a phone width (390x844) and a desktop width (1280x800): screenshots of the main
// flow (home, consent, preloader, signed in, error), checked for the basics people notice:
// nothing wider than the screen, a tappable Facebook button with its logo, visible focus,
// and a preloader that stays still for people who ask for reduced motion.
// `UPDATE_SCREENSHOTS=1 bash e2e/run.sh` copies these to docs/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DESKTOP, PHONE, launchBrowser, scenario } from '../lib/browser.mjs';
import { continueButton, expectErrorPage, expectPreloader, expectSignedIn, openConsent } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function assertFits(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${label}: page is ${scrollWidth}px wide on a ${innerWidth}px screen`);
}

for (const [width, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`layout of the main flow at ${width} width (${viewport.width}x${viewport.height})`, async () => {
    const options = { config: { 'dev_provider.latency_ms': 1500 }, context: { viewport, isMobile: width === 'phone', hasTouch: width === 'phone' } };
    await scenario(browser, `layout-${width}`, options, async (ctx) => {
      const page = await ctx.context.newPage();
      await page.goto(ctx.url('/'));
      const button = continueButton(page);
      await button.waitFor();
      const box = await button.boundingBox();
      assert.ok(box.height >= 44, `the Facebook button is at least 44px high (${box.height})`);
      assert.ok(box.height < 60, `"Continue with Facebook" stays on one line (${box.height}px high)`);
      assert.ok(box.x >= 0 && box.x + box.width <= viewport.width, 'the Facebook button is fully on screen');
      const logo = button.locator('img');
      assert.ok(await logo.evaluate((img) => img.complete && img.naturalWidth > 0), 'the Facebook logo loads');
      assert.equal(
        await button.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(24, 119, 242)',
        'Facebook blue #1877F2',
      );
      await assertFits(page, 'home');
      await ctx.shot(page, 'home');

      await openConsent(page);
      await assertFits(page, 'consent');
      await ctx.shot(page, 'consent');

      await page.getByRole('button', { name: 'Allow' }).click();
      await expectPreloader(page);
      await assertFits(page, 'preloader');
      await ctx.shot(page, 'preloader');

      await expectSignedIn(page, 'Ada');
      await assertFits(page, 'signed-in');
      await ctx.shot(page, 'signed-in');

      await page.getByRole('button', { name: 'Log out' }).click();
      await openConsent(page);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await expectErrorPage(page, /You cancelled signing in with Facebook/);
      await assertFits(page, 'error');
      await ctx.shot(page, 'error');

      await page.goto(ctx.url('/no-such-page'));
      await page.getByRole('heading', { name: 'Page not found' }).waitFor();
      await assertFits(page, 'not-found');
      await ctx.shot(page, 'not-found');
    });
  });
}

test('keyboard focus is visible and the preloader is still with reduced motion', async () => {
  const options = { config: { 'dev_provider.fault': 'hang', 'login.exchange_timeout_secs': 5 }, context: { reducedMotion: 'reduce' } };
  await scenario(browser, 'focus-and-motion', options, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    // Tab from the top of the page until the Facebook button has focus.
    let focused = '';
    for (let i = 0; i < 6 && !focused.includes('Continue with Facebook'); i += 1) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.textContent ?? '');
    }
    assert.match(focused, /Continue with Facebook/, 'the Facebook button is reachable with Tab');
    const outline = await page.evaluate(() => {
      const style = getComputedStyle(document.activeElement);
      return { style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    assert.ok(outline.style !== 'none' && outline.width >= 2, `a visible focus ring: ${JSON.stringify(outline)}`);
    await ctx.shot(page, 'home-focus');

    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    const animation = await page.locator('.spinner').evaluate((el) => getComputedStyle(el).animationName);
    assert.equal(animation, 'none', 'no spinning for people who ask for reduced motion');
    await ctx.shot(page, 'preloader-reduced-motion');
  });
});
