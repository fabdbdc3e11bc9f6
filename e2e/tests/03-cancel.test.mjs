// Scenario 3: Cancel on the consent page, the error page explains it, "Try again" works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { DIALOG, expectErrorPage, expectPreloader, expectSignedIn, homeThenConsent } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('cancel at the consent page, then try again and sign in', async () => {
  await scenario(browser, 'cancel', { config: { 'dev_provider.latency_ms': 500 } }, async (ctx) => {
    const page = await homeThenConsent(ctx);
    await page.getByRole('button', { name: 'Cancel' }).click();

    await expectErrorPage(page, /You cancelled signing in with Facebook/);
    const alert = page.getByRole('alert');
    assert.match(await alert.first().innerText(), /Nothing was shared/);
    assert.equal(await page.getByRole('link', { name: 'Try again' }).getAttribute('href'), '/authorize/facebook');
    await ctx.shot(page, 'error-cancelled');

    await page.getByRole('link', { name: 'Try again' }).click();
    await page.waitForURL(DIALOG);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    await ctx.shot(page, 'consent-again');

    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    await ctx.shot(page, 'preloader');
    await expectSignedIn(page, 'Ada');
    await ctx.shot(page, 'signed-in');
  });
});
