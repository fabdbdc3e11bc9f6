// axe-core on every page of the flow: the home page, the consent page, the preloader, the
// error page, the signed-in page and the account pages. Fails on any "serious" or "critical" violation and
// prints every violation found (minor and moderate ones too, as diagnostics).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { describe, seriousViolations } from '../lib/axe.mjs';
import { expectErrorPage, expectPreloader, expectSignedIn, openConsent } from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function check(t, ctx, page, label, failures) {
  const { all, serious } = await seriousViolations(page);
  t.diagnostic(`${label}: ${all.length} violation(s), ${serious.length} serious or critical`);
  // node:test escapes newlines inside one diagnostic: one line each.
  for (const line of describe(all).split('\n').filter(Boolean)) t.diagnostic(line);
  if (serious.length > 0) failures.push(`${label} (${page.url()}):\n${describe(serious)}`);
  await ctx.shot(page, label);
}

test('axe: home, consent, preloader, error and signed-in pages', async (t) => {
  const failures = [];

  // A hanging provider keeps the preloader on screen for the whole exchange timeout (5 s),
  // then ends on the timeout error page.
  const hanging = { 'dev_provider.fault': 'hang', 'login.exchange_timeout_secs': 5 };
  await scenario(browser, 'accessibility-waiting', { config: hanging }, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await check(t, ctx, page, 'home', failures);
    await openConsent(page);
    await check(t, ctx, page, 'consent', failures);
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    await check(t, ctx, page, 'preloader', failures);
    await expectErrorPage(page, /did not answer in time/);
    await check(t, ctx, page, 'error-timeout', failures);
  });

  await scenario(browser, 'accessibility-done', {}, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await openConsent(page);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expectErrorPage(page, /You cancelled/);
    await check(t, ctx, page, 'error-cancelled', failures);
    await page.getByRole('link', { name: 'Try again' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectSignedIn(page, 'Ada');
    await check(t, ctx, page, 'signed-in', failures);
    // Sign-in methods, where you're signed in and recent activity.
    await page.goto(ctx.url('/account'));
    await page.getByRole('heading', { level: 2, name: "Where you're signed in" }).waitFor();
    await check(t, ctx, page, 'account', failures);
    await page.goto(ctx.url('/account/delete'));
    await check(t, ctx, page, 'delete-account', failures);
    await page.goto(ctx.url('/no-such-page'));
    await check(t, ctx, page, 'not-found', failures);
  });

  assert.equal(failures.length, 0, `serious or critical accessibility violations:\n${failures.join('\n')}`);
});
