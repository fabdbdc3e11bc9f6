// Scenario 5: the back button and a second tab during the flow. What the app guarantees,
// and what these tests hold it to:
//  * A browser has one session, so one signed-in person at a time: every tab shows the
//    same person, and it is always one whole person (never one person's name on another's
//    sign-in).
//  * A started sign-in's `state` is single use and cleared when anyone signs in; a stale
//    tab's late callback is refused (400 "This link did not work") and never replaces, or
//    mixes with, the person already signed in.
//  * The session waits for one exchange: the one whose callback arrived last. Two tabs on
//    the preloader at once both follow that one.
// Not guaranteed: "whoever completes last wins". Once someone is signed in, a later Allow
// in another tab is refused rather than switching people (5b), and a tab that loses the
// race ends on an error page although the person is signed in (5c). Not yet true: that the
// person stays signed in whatever the other tabs do at that moment (5d, a known bug).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startApp } from '../lib/app.mjs';
import { ARTIFACTS, launchBrowser, scenario } from '../lib/browser.mjs';
import {
  DIALOG, expectPreloader, expectSignedIn, expectSignedOut, greeting, onPath, openConsent,
} from '../lib/flow.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Text of the page's <main>, on one line, for messages. */
async function mainText(page) {
  return (await page.locator('main').innerText()).replace(/\s+/g, ' ').trim();
}

test('5a: back from the consent page and from the preloader does not break the sign-in', async () => {
  await scenario(browser, 'back-button', { config: { 'dev_provider.latency_ms': 1000 } }, async (ctx) => {
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await ctx.shot(page, 'home');
    await openConsent(page);
    await ctx.shot(page, 'consent');

    // Back at the consent page: home, still signed out; then start again.
    await page.goBack();
    await onPath(page, '/');
    await expectSignedOut(page);
    await ctx.shot(page, 'home-after-back');
    await openConsent(page);
    await ctx.shot(page, 'consent-again');

    // The person types someone else and allows.
    await page.getByLabel('First name').fill('Augusta');
    await page.getByLabel('Last name').fill('King');
    await page.getByLabel(/Email/).fill('augusta@example.com');
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    await ctx.shot(page, 'preloader');

    // Back from the preloader (to the provider's page) and forward again: still waiting
    // for the same exchange, which then signs in the person who was chosen.
    await page.goBack();
    await page.waitForURL(DIALOG);
    await ctx.shot(page, 'consent-via-back');
    await page.goForward();
    await expectSignedIn(page, 'Augusta');
    await ctx.shot(page, 'signed-in');

    // Back after signing in lands on the provider's page again; allowing there as Ada
    // replays a used `state`: refused, and Augusta stays signed in.
    await page.goBack();
    await page.waitForURL(DIALOG);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((url) => url.pathname === '/callback/facebook');
    assert.match(await mainText(page), /This link did not work/);
    await ctx.shot(page, 'stale-callback-refused');
    await page.goto(ctx.url('/'));
    await expectSignedIn(page, 'Augusta');
    assert.equal(await greeting(page, 'Ada').count(), 0);
  });
});

test('5b: a second tab signs in first; the first tab\'s late Allow changes nothing', async () => {
  await scenario(browser, 'second-tab', { config: { 'dev_provider.latency_ms': 300 } }, async (ctx) => {
    const tabA = await ctx.context.newPage();
    await tabA.goto(ctx.url('/'));
    await ctx.shot(tabA, 'tab-a-home');
    await openConsent(tabA);
    await ctx.shot(tabA, 'tab-a-consent');

    // Tab B, same browser (same cookies), starts its own sign-in and finishes as Grace.
    const tabB = await ctx.context.newPage();
    await tabB.goto(ctx.url('/'));
    await ctx.shot(tabB, 'tab-b-home');
    await openConsent(tabB);
    await ctx.shot(tabB, 'tab-b-consent');
    await tabB.getByRole('button', { name: /Grace Hopper/ }).click();
    await expectSignedIn(tabB, 'Grace');
    await ctx.shot(tabB, 'tab-b-signed-in');

    // Tab A now allows as Ada. Signing Grace in cleared every started sign-in, so Ada's
    // callback is refused: the person signed in (Grace) stays, whole.
    await tabA.getByRole('button', { name: 'Allow' }).click();
    await tabA.waitForURL((url) => url.pathname === '/callback/facebook');
    const landed = await mainText(tabA);
    assert.match(landed, /This link did not work/, landed);
    assert.match(landed, /start the sign-in again/);
    assert.doesNotMatch(landed, /Hi, Ada/);
    await ctx.shot(tabA, 'tab-a-late-callback');

    for (const tab of [tabA, tabB]) {
      await tab.goto(ctx.url('/'));
      await expectSignedIn(tab, 'Grace');
      assert.equal(await greeting(tab, 'Ada').count(), 0, 'never Ada in any tab');
    }
    await ctx.shot(tabA, 'tab-a-home-after');
  });
});

test('5c: two tabs on the preloader at once follow the last callback, never a mix', async () => {
  // Slow enough (2 s + 2 s) that tab B's callback surely arrives before tab A's exchange
  // ends: the session then waits for B's exchange only.
  await scenario(browser, 'two-tabs-waiting', { config: { 'dev_provider.latency_ms': 2000 } }, async (ctx) => {
    const tabA = await ctx.context.newPage();
    const tabB = await ctx.context.newPage();
    await tabA.goto(ctx.url('/'));
    await ctx.shot(tabA, 'tab-a-home');
    await openConsent(tabA);
    await ctx.shot(tabA, 'tab-a-consent');
    await tabB.goto(ctx.url('/'));
    await ctx.shot(tabB, 'tab-b-home');
    await openConsent(tabB);
    await ctx.shot(tabB, 'tab-b-consent');

    // Tab B's polls are answered "pending" here, without reaching the server, until tab A
    // is done. Were one of them in flight while tab A's /success renews the session id,
    // its answer would delete the new session cookie and sign the person out: a known bug
    // (5d below), timing-dependent, which this test keeps out so it checks the rest.
    let holdTabB = true;
    await tabB.route('**/get-status', (route) => (holdTabB
      ? route.fulfill({ status: 200, contentType: 'text/plain', body: 'pending' })
      : route.continue()));

    await tabA.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(tabA);
    await ctx.shot(tabA, 'tab-a-preloader');
    await tabB.getByRole('button', { name: /Grace Hopper/ }).click();
    await expectPreloader(tabB);
    await ctx.shot(tabB, 'tab-b-preloader');

    // The session waits for one operation, the last callback's: tab A, where Ada was
    // chosen, signs in Grace. Never Ada, never a mix.
    await expectSignedIn(tabA, 'Grace');
    await ctx.shot(tabA, 'tab-a-signed-in');

    // Tab B's next real poll finds no sign-in waiting (it was finished in tab A): it ends on
    // the error page although Grace is signed in, a rough edge (see e2e/README.md), and
    // changes nothing.
    holdTabB = false;
    await tabB.waitForURL((url) => url.pathname === '/error');
    assert.match(await mainText(tabB), /did not complete/);
    await ctx.shot(tabB, 'tab-b-error');

    for (const tab of [tabA, tabB]) {
      await tab.goto(ctx.url('/'));
      await expectSignedIn(tab, 'Grace');
      assert.equal(await greeting(tab, 'Ada').count(), 0, 'never Ada in any tab');
    }
    await ctx.shot(tabB, 'tab-b-home-after');
  });
});

// Known bug, tracked as a todo (reported, not failing the suite; it passes once fixed).
// /success renews the session id and deletes the old record. A request still carrying the
// old cookie (another tab's poll in flight at that moment) then finds no record, and the
// session layer answers with a removal cookie ("loginwith_session=; Max-Age=0"), which
// deletes the new, signed-in cookie: the person is signed out in every tab. Reproduced here
// with plain HTTP so the timing is exact; in the browser it is the race 5c keeps out.
test('5d: a request with the pre-renewal cookie does not sign the person out', {
  todo: 'known bug: the stale request\'s removal cookie deletes the new session cookie',
}, async () => {
  const app = await startApp({}, { logFile: path.join(ARTIFACTS, 'stale-cookie', 'server.log') });
  try {
    const cookieOf = (response) => response.headers.get('set-cookie')?.split(';')[0] ?? null;
    const get = (url, cookie) => fetch(new URL(url, app.url), { redirect: 'manual', headers: cookie ? { cookie } : {} });
    const authorize = await get('/authorize/facebook');
    const before = cookieOf(authorize);
    const dialog = new URL(authorize.headers.get('location'));
    const form = new URLSearchParams(dialog.searchParams);
    form.set('preset', 'grace');
    const consent = await fetch(new URL(dialog.pathname, dialog), { method: 'POST', body: form, redirect: 'manual' });
    await get(consent.headers.get('location').split('#')[0], before);
    for (let status = ''; status !== 'ok';) {
      status = await (await get('/get-status', before)).text();
      assert.notEqual(status, 'error');
    }
    const signedIn = cookieOf(await get('/success', before));
    assert.match(await (await get('/', signedIn)).text(), /Hi, Grace!/);

    // Tab B's poll, sent with the cookie the browser had a moment ago.
    const stale = await get('/get-status', before);
    const setCookie = stale.headers.get('set-cookie') ?? '';
    assert.doesNotMatch(setCookie, /Max-Age=0/, `a stale request must not delete the session cookie: ${setCookie}`);
  } finally {
    await app.stop();
  }
});
