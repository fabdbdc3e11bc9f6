// Scenario 10: sign-in through a real OpenID Provider, then a second identity linked to the
// same person. The provider is the certified `oidc-provider` package (lib/oidc-provider.mjs)
// on a loopback port of its own, driven through its development login and consent pages;
// loginwith is configured for it by environment variables exactly as README.md tells people
// (LOGINWITH_PROVIDERS__CORP__KIND=oidc, __ISSUER, __CLIENT_ID, __CLIENT_SECRET,
// __DISPLAY_NAME), and for Facebook by the stand-in (examples/facebook_stand_in.rs), so the
// built-in development provider is off.
//
// Continue with Acme SSO → the issuer's sign-in and consent pages → preloader → "Hi, …!" →
// Sign-in methods → Add Facebook → the stand-in's consent → back on Sign-in methods with both
// → Log out → Continue with Facebook → the same person: the same greeting, and Sign-in methods
// lists both identities. Then Acme SSO again, where the issuer remembers the person (no login,
// no consent), still the same person.
//
// The person's name carries markup and an emoji: the greeting must show it as text.
//
// oidc-provider and Chromium must be installed (e2e/run.sh sees to both): without them this
// fails saying what is missing; it never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { freePort, startApp } from '../lib/app.mjs';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { expectSignedIn, greeting, onPath, PRELOADER } from '../lib/flow.mjs';
import { startOpenIdProvider } from '../lib/oidc-provider.mjs';
import { startStandIn } from '../lib/production.mjs';

const CORP = 'Acme SSO';
const CORP_CLIENT_ID = 'loginwith';
// The name as the issuer has it: split at its first space, the first name is the greeting's.
const NAME = '<b>Ada</b>🦀 <i>Lovelace</i>';
const FIRST_NAME = '<b>Ada</b>🦀';
const LAST_NAME = '<i>Lovelace</i>';
const ACCOUNTS = {
  ada: { name: NAME, email: 'ada@acme.example', email_verified: true },
};
// On Facebook the same person under the same name, with another address: the two are joined
// only because she linked them, never by an email (they do not even match).
const FACEBOOK_EMAIL = 'ada.lovelace@facebook.example';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/**
 * scenario()'s `start`: oidc-provider, then the Facebook stand-in, then loginwith (which
 * discovers the issuer at start-up, so the issuer must answer first). loginwith's port is
 * chosen before both providers start, since each must know its redirect URI; a port taken
 * meanwhile is retried with another.
 */
async function startStack(config, { logFile }) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startStackOnce(config, { logFile });
    } catch (error) {
      lastError = error;
      if (!error.portTaken) throw error;
    }
  }
  throw lastError;
}

async function startStackOnce(config, { logFile }) {
  const appPort = await freePort();
  const appUrl = `http://127.0.0.1:${appPort}`;
  const corpSecret = randomBytes(32).toString('base64url');
  const facebookId = String(1_000_000_000 + Math.floor(Math.random() * 8_999_999_999));
  const facebookSecret = randomBytes(16).toString('hex');

  const stopping = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  try {
    const op = await startOpenIdProvider({
      client: { clientId: CORP_CLIENT_ID, clientSecret: corpSecret, redirectUri: `${appUrl}/callback/corp` },
      accounts: ACCOUNTS,
      // 400 ms on the token and userinfo endpoints each: the preloader is on screen a moment.
      latencyMs: 400,
    });
    stopping.push(op.stop);
    stopping.push(async () => {
      if (!logFile) return;
      await mkdir(path.dirname(logFile), { recursive: true });
      await writeFile(path.join(path.dirname(logFile), 'openid-provider.log'), op.log());
    });
    const standIn = await startStandIn({
      clientId: facebookId,
      clientSecret: facebookSecret,
      redirectUri: `${appUrl}/callback/facebook`,
      latencyMs: 300,
    });
    stopping.push(standIn.stop);
    stopping.push(async () => {
      if (logFile) await writeFile(path.join(path.dirname(logFile), 'stand-in.log'), standIn.log());
    });
    const standInUrl = `http://${standIn.upstream}`;
    const requestsBeforeStart = op.requests.length;
    const app = await startApp(config, {
      logFile,
      port: appPort,
      // As README.md's "Connect Google or any OpenID Connect issuer" has them.
      env: {
        LOGINWITH_PROVIDERS__CORP__KIND: 'oidc',
        LOGINWITH_PROVIDERS__CORP__DISPLAY_NAME: CORP,
        LOGINWITH_PROVIDERS__CORP__ISSUER: op.issuer,
        LOGINWITH_PROVIDERS__CORP__CLIENT_ID: CORP_CLIENT_ID,
        LOGINWITH_PROVIDERS__CORP__CLIENT_SECRET: corpSecret,
        LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID: facebookId,
        LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET: facebookSecret,
        LOGINWITH_PROVIDERS__FACEBOOK__AUTHORIZE_URL: `${standInUrl}/dialog/oauth`,
        LOGINWITH_PROVIDERS__FACEBOOK__TOKEN_URL: `${standInUrl}/oauth/access_token`,
        LOGINWITH_PROVIDERS__FACEBOOK__API_URL: standInUrl,
      },
    });
    stopping.push(app.stop);
    return {
      url: app.url,
      port: app.port,
      app,
      op,
      standInUrl,
      /** What the issuer answered while loginwith started, before it first answered itself. */
      startUpRequests: op.requests.slice(requestsBeforeStart),
      log: () => `${app.log()}\n--- oidc-provider ---\n${op.log()}\n--- facebook stand-in ---\n${standIn.log()}`,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function corpButton(page) {
  return page.getByRole('link', { name: `Continue with ${CORP}` });
}

function facebookButton(page) {
  return page.getByRole('link', { name: 'Continue with Facebook' });
}

/** The signed-out home page: one button per configured provider, and no development one. */
async function expectSignedOutWithBoth(page) {
  await onPath(page, '/');
  await corpButton(page).waitFor();
  await facebookButton(page).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Log out' }).count(), 0, 'no Log out button when signed out');
}

/** The greeting shows the name as text: no element made of the markup in it. */
async function expectGreetingEscaped(page) {
  const heading = page.getByRole('heading', { level: 1 });
  assert.equal(await heading.innerText(), `Hi, ${FIRST_NAME}!`);
  assert.equal(await heading.locator('b, i, script').count(), 0, 'the name\'s markup made no element');
  const html = await heading.innerHTML();
  assert.ok(html.includes('&lt;b&gt;Ada&lt;/b&gt;🦀'), `the markup is escaped in the page's HTML: ${html}`);
}

/** Waits on loginwith's preloader, talking to `provider`. */
async function expectPreloaderFor(page, provider) {
  await page.waitForURL(PRELOADER);
  const status = page.locator('#status');
  await status.waitFor();
  assert.match(await status.innerText(), new RegExp(`Talking to ${provider}`));
}

/** "Sign-in methods": the providers listed, in order, and which are offered to add. */
async function signInMethods(page) {
  await onPath(page, '/account');
  await page.getByRole('heading', { level: 1, name: 'Sign-in methods' }).waitFor();
  // The sign-in methods' own list: the page also lists devices and recent activity.
  const listed = await page
    .getByRole('region', { name: 'Sign-in methods' })
    .locator('li > strong')
    .allInnerTexts();
  const addable = (await page.locator('main form[action^="/account/link/"] button').allInnerTexts())
    .map((text) => text.replace(/^Add /, ''));
  const removable = await page.locator('main form[action^="/account/identities/"]').count();
  return { listed, addable, removable };
}

/** The stand-in's consent page: the same person as at the issuer, by name; Allow. */
async function allowOnFacebook(page, standInUrl) {
  await page.waitForURL((url) => url.origin === standInUrl && url.pathname === '/dialog/oauth');
  await page.getByLabel('First name').fill(FIRST_NAME);
  await page.getByLabel('Last name').fill(LAST_NAME);
  await page.getByLabel('Email').fill(FACEBOOK_EMAIL);
}

test('10: sign in through oidc-provider, link Facebook from Sign-in methods, sign in with Facebook: the same person', async () => {
  await scenario(browser, 'openid-provider', { start: startStack }, async (ctx) => {
    const { op, standInUrl } = ctx.app;
    const page = await ctx.context.newPage();
    // Every URL the tab asked for, redirects included: where the flow went, however fast.
    const visited = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) visited.push(request.url());
    });

    // loginwith discovered the issuer while starting: its configuration and its keys were
    // fetched before loginwith first answered, by loginwith.
    const startUp = ctx.app.startUpRequests.map((r) => `${r.method} ${r.path} ${r.status} ${r.userAgent}`);
    assert.ok(startUp.some((r) => /^GET \/\.well-known\/openid-configuration 200 loginwith\//.test(r)), `discovery at start-up: ${startUp.join('; ')}`);
    assert.ok(startUp.some((r) => /^GET \/jwks 200 loginwith\//.test(r)), `keys at start-up: ${startUp.join('; ')}`);

    await page.goto(ctx.url('/'));
    await expectSignedOutWithBoth(page);
    // Configured providers only: the development provider is not mounted.
    assert.equal((await fetch(ctx.url('/dev/facebook/dialog/oauth'), { redirect: 'manual' })).status, 404, 'no development provider');
    await ctx.shot(page, 'home');

    // --- Continue with Acme SSO: the issuer's own sign-in and consent pages.
    await corpButton(page).click();
    await page.waitForURL((url) => url.origin === op.issuer && url.pathname.startsWith('/interaction/'));
    const authorize = new URL(visited.find((u) => u.startsWith(`${op.issuer}/auth?`)) ?? 'http://missing.invalid/');
    const sent = Object.fromEntries(authorize.searchParams);
    assert.equal(sent.client_id, CORP_CLIENT_ID, `the authorization request: ${authorize}`);
    assert.equal(sent.response_type, 'code');
    assert.equal(sent.redirect_uri, ctx.url('/callback/corp'));
    assert.equal(sent.code_challenge_method, 'S256', 'PKCE S256');
    assert.match(sent.code_challenge ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((sent.state ?? '').length >= 22, 'a state');
    assert.ok((sent.nonce ?? '').length >= 22, 'a nonce');
    assert.deepEqual((sent.scope ?? '').split(' ').sort(), ['email', 'openid', 'profile']);

    await page.getByRole('heading', { level: 1, name: 'Sign-in' }).waitFor();
    await ctx.shot(page, 'issuer-sign-in');
    await page.getByPlaceholder('Enter any login').fill('ada');
    await page.getByPlaceholder('and password').fill('any password will do');
    await page.getByRole('button', { name: 'Sign-in' }).click();

    await page.getByRole('heading', { level: 1, name: 'Authorize' }).waitFor();
    const asked = await page.locator('ul').first().innerText();
    for (const scope of ['email', 'profile']) assert.match(asked, new RegExp(`\\b${scope}\\b`), `the consent page asks for ${scope}: ${asked}`);
    await ctx.shot(page, 'issuer-consent');
    await page.getByRole('button', { name: 'Continue' }).click();

    await expectPreloaderFor(page, CORP);
    await ctx.shot(page, 'preloader');
    await expectSignedIn(page, FIRST_NAME);
    await expectGreetingEscaped(page);
    await ctx.shot(page, 'signed-in-with-corp');

    // The issuer answered on the callback with its iss (RFC 9207), and loginwith swapped the
    // code (with its secret and verifier) and read userinfo, where the name and address are.
    const callback = new URL(visited.find((u) => u.startsWith(ctx.url('/callback/corp?'))) ?? 'http://missing.invalid/');
    assert.equal(callback.searchParams.get('iss'), op.issuer, `the callback: ${callback}`);
    assert.equal(callback.searchParams.get('state'), sent.state);
    const calls = op.requests.filter((r) => r.userAgent.startsWith('loginwith/')).map((r) => `${r.method} ${r.path} ${r.status}`);
    assert.ok(calls.includes('POST /token 200'), `loginwith's calls to the issuer: ${calls.join('; ')}`);
    assert.ok(calls.includes('GET /me 200') || calls.includes('POST /me 200'), `userinfo: ${calls.join('; ')}`);

    // --- Sign-in methods: Acme SSO only; add Facebook from there.
    await page.getByRole('link', { name: 'Sign-in methods' }).click();
    let methods = await signInMethods(page);
    assert.deepEqual(methods.listed, [CORP], 'one identity after the first sign-in');
    assert.deepEqual(methods.addable, ['Facebook']);
    assert.equal(methods.removable, 0, 'the only identity cannot be removed');
    await ctx.shot(page, 'sign-in-methods');

    await page.getByRole('button', { name: 'Add Facebook' }).click();
    await allowOnFacebook(page, standInUrl);
    await ctx.shot(page, 'facebook-consent-to-link');
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloaderFor(page, 'Facebook');
    await ctx.shot(page, 'preloader-link');

    methods = await signInMethods(page);
    await page.getByText('Facebook was added to your sign-in methods').waitFor();
    assert.deepEqual(methods.listed, [CORP, 'Facebook'], 'Facebook added to the same person');
    assert.deepEqual(methods.addable, [], 'nothing left to add');
    assert.equal(methods.removable, 2, 'either can be removed now');
    await ctx.shot(page, 'sign-in-methods-linked');

    // Still signed in as herself.
    await page.getByRole('link', { name: 'Back to the home page' }).click();
    await expectSignedIn(page, FIRST_NAME);

    // --- Log out, then sign in with Facebook.
    await page.getByRole('button', { name: 'Log out' }).click();
    await expectSignedOutWithBoth(page);
    assert.equal(await greeting(page, FIRST_NAME).count(), 0);
    await ctx.shot(page, 'signed-out');

    await facebookButton(page).click();
    await allowOnFacebook(page, standInUrl);
    await ctx.shot(page, 'facebook-consent-to-sign-in');
    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloaderFor(page, 'Facebook');
    await expectSignedIn(page, FIRST_NAME);
    await expectGreetingEscaped(page);
    await ctx.shot(page, 'signed-in-with-facebook');

    // The same person, not a second one: her Sign-in methods list both identities.
    await page.getByRole('link', { name: 'Sign-in methods' }).click();
    methods = await signInMethods(page);
    assert.deepEqual(methods.listed, [CORP, 'Facebook'], 'signed in with Facebook: the person who has both');
    assert.deepEqual(methods.addable, []);
    await ctx.shot(page, 'sign-in-methods-after-facebook');

    // --- And Acme SSO once more: the issuer remembers her (its session, her grant), so it
    // sends her straight back; loginwith finds the same person again.
    await page.getByRole('link', { name: 'Back to the home page' }).click();
    await page.getByRole('button', { name: 'Log out' }).click();
    await expectSignedOutWithBoth(page);
    const interactionsBefore = op.requests.filter((r) => r.path.startsWith('/interaction/')).length;
    await corpButton(page).click();
    await expectSignedIn(page, FIRST_NAME);
    await expectGreetingEscaped(page);
    assert.equal(op.requests.filter((r) => r.path.startsWith('/interaction/')).length, interactionsBefore, 'no sign-in or consent page the second time');
    await page.getByRole('link', { name: 'Sign-in methods' }).click();
    methods = await signInMethods(page);
    assert.deepEqual(methods.listed, [CORP, 'Facebook'], 'signed in with Acme SSO again: the same person');
    await ctx.shot(page, 'sign-in-methods-after-corp-again');
  });
});
