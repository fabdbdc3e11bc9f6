// Scenario 1: the whole sign-in with JavaScript, reload, and log out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { expectPreloader, expectSignedIn, expectSignedOut, greeting, onPath, openConsent } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('sign in, stay signed in across a reload, log out', async () => {
  // A little latency so the preloader is really on screen (token and /me: 800 ms each).
  await scenario(browser, 'sign-in', { config: { 'dev_provider.latency_ms': 800 } }, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await expectSignedOut(page);
    assert.equal(await page.title(), 'Sign in · loginwith');
    await ctx.shot(page, 'home');

    await openConsent(page);
    await ctx.shot(page, 'consent');
    assert.equal(await page.getByLabel('First name').inputValue(), 'Ada');

    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    await ctx.shot(page, 'preloader');

    await expectSignedIn(page, 'Ada');
    await ctx.shot(page, 'signed-in');

    await page.reload();
    await expectSignedIn(page, 'Ada');
    await ctx.shot(page, 'signed-in-after-reload');

    // The logout form carries the session's CSRF token.
    const token = await page.locator('form[action="/logout"] input[name="csrf_token"]').inputValue();
    assert.ok(token.length >= 32, 'a real CSRF token in the logout form');
    await page.getByRole('button', { name: 'Log out' }).click();
    await onPath(page, '/');
    await expectSignedOut(page);
    assert.equal(await greeting(page, 'Ada').count(), 0);
    await ctx.shot(page, 'signed-out');

    // Signed out for good: a reload does not bring the session back.
    await page.reload();
    await expectSignedOut(page);
  });
});
