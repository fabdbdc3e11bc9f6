// Scenario 14: signing out at the issuer ends the sign-in here, and signing out here can end
// the session at the issuer. loginwith signs people in through a real OpenID Provider (the npm
// oidc-provider, lib/oidc-provider.mjs, as in scenarios 10 and 13) configured as `corp` by
// LOGINWITH_PROVIDERS__CORP__* variables; the issuer registers loginwith's
// `backchannel_logout_uri` (`http://127.0.0.1:PORT/backchannel-logout/corp`: the route answers
// on any host, and the issuer's server posts to it from this process) with
// `backchannel_logout_session_required`, so its ID tokens carry `sid`, and loginwith's public
// URL plus a slash among its `post_logout_redirect_uris`.
//
// 14a, OpenID Connect Back-Channel Logout 1.0, with forward authentication as scenario 12 runs
// it (Debian's nginx running deploy/nginx/forward-auth.conf, lib/gateway.mjs, every replacement
// asserted, in front of a small page in this test process): Ada opens the protected URL, signs
// in at the issuer and sees the page; her sign-in's row in loginwith's database (sqlite3) keeps
// the issuer's `sid`. She signs in on a second device too (another browser context, another
// issuer session, another `sid`). Logout tokens forged by the test (RS256 with a key the
// issuer does not publish, once under the issuer's `kid`, once under a `kid` of its own, with
// her real `iss`, `aud`, `sid`, `sub` and the logout event) get 400 `invalid_request` naming
// the signature, and end nothing: the page still shows. Then she ends her session at the
// issuer (its `/session/end` and its logout prompt): the issuer posts a logout token for her
// `sid` to loginwith, which answers 200 and logs "back-channel logout: sign-ins ended"; that
// sign-in's row is gone, the protected URL leads to loginwith's sign-in page again (the page
// behind nginx sees nothing more), and the second device, another `sid`, is still let in.
// The issuer's own token, sent once more, gets 400 ("used before") and ends nothing.
//
// 14b, RP-Initiated Logout 1.0 (`providers.corp.sign_out_at_provider = true`): Ada signs in and
// presses "Log out" on loginwith's home page: 200 with a `Refresh: 0;url=…` header to the
// issuer's discovered end_session_endpoint with `client_id`, `post_logout_redirect_uri` = the
// public URL plus a slash, and `state`. The browser follows it by itself to the issuer's logout
// prompt; by then loginwith has ended her sign-in (no row in the database, no cookie). She
// confirms and lands back on loginwith's home page (that `state` in the address), signed out;
// the issuer's back-channel post sent meanwhile ends nothing more (200, ended=0). "Continue
// with Acme SSO" then meets the issuer's login prompt, not a silent return: the issuer's
// session ended. She signs in and logs out once more, this time as a browser that does not
// follow Refresh (the header removed on its way in; a page being left for another origin
// cannot be photographed): the page "Signing you out" / "You are signed out here" with its
// "Continue to Acme SSO" link to the same place, which leads through the issuer's prompt back
// home, and then to the issuer's login prompt again.
//
// nginx, sqlite3, oidc-provider and Chromium must be installed (e2e/run.sh sees to them):
// without one this fails saying what is missing; it never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import http from 'node:http';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, startApp } from '../lib/app.mjs';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { onPath } from '../lib/flow.mjs';
import { nginxSite } from '../lib/gateway.mjs';
import { startNginxServers } from '../lib/nginx.mjs';
import { startOpenIdProvider } from '../lib/oidc-provider.mjs';
import { query } from '../lib/sqlite.mjs';

const LOGIN_HOST = 'login.example.localhost';
const APP_HOST = 'app.example.localhost';
const CORP = 'Acme SSO';
const CORP_CLIENT_ID = 'loginwith';
const ADA = { name: 'Ada Lovelace', email: 'ada@acme.example', email_verified: true };
const ACCOUNTS = { ada: ADA };
const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const PROTECTED_PATH = '/reports?year=2026';

let browser;
before(async () => {
  browser = await launchBrowser({
    args: [`--host-resolver-rules=MAP ${LOGIN_HOST} 127.0.0.1, MAP ${APP_HOST} 127.0.0.1`],
  });
});
after(async () => { await browser?.close(); });

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The protected site: greets X-Auth-Request-Name (percent-decoded, HTML-escaped) and fails
 * loudly without it. Every request is kept.
 */
async function startProtectedSite() {
  const seen = [];
  const server = http.createServer((request, response) => {
    seen.push(request.url);
    request.resume();
    const name = request.headers['x-auth-request-name'];
    if (name === undefined) {
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('no X-Auth-Request-Name: nginx let an unauthenticated request through');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reports</title></head>
<body><main><h1>Hello, ${escapeHtml(decodeURIComponent(name))}</h1>
<p>The reports of 2026.</p></main></body></html>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    seen,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/**
 * scenario()'s `start`: oidc-provider (with both logouts registered for loginwith), loginwith
 * on login.example.localhost (which discovers the issuer at start-up), and with `gateway` the
 * protected site behind nginx. `signOutAtProvider` sets LOGINWITH_PROVIDERS__CORP__SIGN_OUT_AT_PROVIDER.
 * A port taken meanwhile is retried with another.
 */
function startStack({ gateway, signOutAtProvider = false }) {
  return async (config, { logFile }) => {
    let lastError;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        return await startStackOnce({ gateway, signOutAtProvider }, config, { logFile });
      } catch (error) {
        lastError = error;
        if (!error.portTaken) throw error;
      }
    }
    throw lastError;
  };
}

async function startStackOnce({ gateway, signOutAtProvider }, config, { logFile }) {
  const artifacts = path.dirname(logFile);
  const stopping = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  try {
    const appPort = await freePort();
    const loginUrl = `http://${LOGIN_HOST}:${appPort}`;
    const backchannelLogoutUri = `http://127.0.0.1:${appPort}/backchannel-logout/corp`;
    const corpSecret = randomBytes(32).toString('base64url');
    const op = await startOpenIdProvider({
      client: {
        clientId: CORP_CLIENT_ID,
        clientSecret: corpSecret,
        redirectUri: `${loginUrl}/callback/corp`,
        backchannelLogoutUri,
        // `Config::post_logout_redirect_uri`: the public URL plus a slash.
        postLogoutRedirectUris: [`${loginUrl}/`],
      },
      accounts: ACCOUNTS,
    });
    stopping.push(op.stop);
    stopping.push(async () => {
      await mkdir(artifacts, { recursive: true });
      await writeFile(path.join(artifacts, 'openid-provider.log'), op.log());
    });
    const site = gateway ? await startProtectedSite() : undefined;
    if (site) stopping.push(site.stop);
    const app = await startApp({
      'server.public_url': loginUrl,
      ...(gateway ? {
        'session.cookie_domain': 'example.localhost',
        'gateway.allowed_hosts': APP_HOST,
        // nginx is the peer: loginwith reads the protected URL from it alone.
        'server.trusted_proxies': '127.0.0.1',
      } : {}),
      ...config,
    }, {
      logFile,
      port: appPort,
      readyHost: `${LOGIN_HOST}:${appPort}`,
      env: {
        LOGINWITH_PROVIDERS__CORP__KIND: 'oidc',
        LOGINWITH_PROVIDERS__CORP__DISPLAY_NAME: CORP,
        LOGINWITH_PROVIDERS__CORP__ISSUER: op.issuer,
        LOGINWITH_PROVIDERS__CORP__CLIENT_ID: CORP_CLIENT_ID,
        LOGINWITH_PROVIDERS__CORP__CLIENT_SECRET: corpSecret,
        ...(signOutAtProvider ? { LOGINWITH_PROVIDERS__CORP__SIGN_OUT_AT_PROVIDER: 'true' } : {}),
      },
    });
    stopping.push(app.stop);

    let nginx;
    let protectedUrl;
    if (gateway) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-issuer-logout-'));
      stopping.push(() => rm(dir, { recursive: true, force: true }));
      const nginxPort = await freePort();
      const servers = await nginxSite({ host: APP_HOST, port: nginxPort, appPort, sitePort: site.port });
      nginx = await startNginxServers({ dir, servers, ports: [nginxPort] });
      stopping.push(async () => {
        await mkdir(artifacts, { recursive: true });
        for (const name of ['nginx.conf', 'error.log', 'access.log']) {
          await copyFile(path.join(dir, name), path.join(artifacts, `nginx-${name}`)).catch(() => {});
        }
      });
      stopping.push(nginx.stop);
      protectedUrl = `http://${APP_HOST}:${nginxPort}${PROTECTED_PATH}`;
    }
    return {
      url: loginUrl,
      app,
      op,
      site,
      nginx,
      protectedUrl,
      backchannelLogoutUri,
      log: () => `${app.log()}\n--- oidc-provider ---\n${op.log()}`,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Polls `condition` every 50 ms until it holds; fails saying `what` (and `detail()`) after `ms`. */
async function waitUntil(condition, what, { ms = 10_000, detail = () => '' } = {}) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}${detail() ? `\n${detail()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The signed-in sessions loginwith keeps: provider, the issuer's sid, whose. */
function signIns(ctx) {
  return query(ctx.app.app, 'SELECT provider, provider_sid, user_id FROM session WHERE user_id IS NOT NULL ORDER BY signed_in_at');
}

function corpButton(page) {
  return page.getByRole('link', { name: `Continue with ${CORP}` });
}

/** loginwith's home page, signed out: the Acme SSO button, no Log out. */
async function expectSignedOutHome(page, loginUrl) {
  await page.waitForURL((url) => url.origin === loginUrl && url.pathname === '/');
  await corpButton(page).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Log out' }).count(), 0, 'no Log out button when signed out');
}

/** The sign-in page, reached from the protected URL with it as `return_to`. */
async function expectSignInFor(page, loginUrl, protectedUrl) {
  await expectSignedOutHome(page, loginUrl);
  assert.equal(new URL(page.url()).searchParams.get('return_to'), protectedUrl, `the sign-in page's return_to: ${page.url()}`);
}

/** The issuer's development sign-in page, asking who the person is. */
async function expectIssuerLoginPrompt(ctx, page) {
  const { op } = ctx.app;
  await page.waitForURL((url) => url.origin === op.issuer && url.pathname.startsWith('/interaction/'));
  await page.getByRole('heading', { level: 1, name: 'Sign-in' }).waitFor();
}

/** Continue with Acme SSO → the issuer's sign-in page as Ada → its consent page → back. */
async function signInAtIssuer(ctx, page, label) {
  await corpButton(page).click();
  await expectIssuerLoginPrompt(ctx, page);
  await page.getByPlaceholder('Enter any login').fill('ada');
  await page.getByPlaceholder('and password').fill('any password will do');
  await ctx.shot(page, `${label}-issuer-sign-in`);
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Authorize' }).waitFor();
  await page.getByRole('button', { name: 'Continue' }).click();
}

/** The protected page, greeting Ada. */
async function expectProtectedPage(page, url) {
  await page.waitForURL((current) => current.href === url);
  await page.getByRole('heading', { level: 1, name: `Hello, ${ADA.name}` }).waitFor();
}

const base64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** An RS256 JWT of `claims` under `header`, signed with `privateKey`. */
function signJwt(header, claims, privateKey) {
  const input = `${base64url({ alg: 'RS256', ...header })}.${base64url(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** The claims of a JWT, unverified (the issuer's own token, read to compare). */
function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/** POSTs `logout_token` as an issuer's server would; resolves to `{ status, type, cacheControl, body }`. */
async function postLogoutToken(uri, token) {
  const response = await fetch(uri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    cacheControl: response.headers.get('cache-control'),
    body: await response.text(),
  };
}

/** `answer` is the 400 `invalid_request` of Back-Channel Logout 1.0 (2.8), its description matching `why`. */
function assertRefused(answer, why, what) {
  assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer)}`);
  assert.match(answer.type, /^application\/json/, `${what}: JSON`);
  assert.equal(answer.cacheControl, 'no-store', `${what}: Cache-Control`);
  const body = JSON.parse(answer.body);
  assert.equal(body.error, 'invalid_request', `${what}: ${answer.body}`);
  assert.match(body.error_description, why, `${what}: ${answer.body}`);
}

/**
 * Waits until the issuer has sent `count` back-channel logouts and each got an answer (or
 * failed); fails if it sent more. Resolves to them.
 */
async function backchannelAnswered(ctx, count) {
  const { op } = ctx.app;
  const done = () => op.backchannelLogouts.filter((sent) => sent.status !== 0 || sent.body !== '');
  await waitUntil(() => done().length >= count, `the issuer's back-channel logout ${count} was answered`,
    { detail: () => `${JSON.stringify(op.backchannelLogouts)}\n${op.log()}` });
  assert.equal(op.backchannelLogouts.length, count, `back-channel logouts sent: ${JSON.stringify(op.backchannelLogouts)}`);
  return op.backchannelLogouts;
}

/** loginwith's log lines saying a back-channel logout ended sign-ins. */
function endedLines(ctx) {
  return ctx.app.app.log().split('\n').filter((line) => line.includes('back-channel logout: sign-ins ended'));
}

test('14a: back-channel logout behind nginx: forged tokens end nothing; signing out at the issuer ends that sign-in (by sid), the protected page asks to sign in again; a replay is refused', async () => {
  await scenario(browser, 'issuer-logout-backchannel', { start: startStack({ gateway: true }) }, async (ctx) => {
    const { op, site, protectedUrl, backchannelLogoutUri } = ctx.app;
    const page = await ctx.context.newPage();

    // --- Ada opens the protected URL: the sign-in page, the issuer, back on the page.
    await page.goto(protectedUrl);
    await expectSignInFor(page, ctx.app.url, protectedUrl);
    assert.equal(site.seen.length, 0, 'nothing reached the protected site');
    await ctx.shot(page, 'sign-in');
    await signInAtIssuer(ctx, page, 'ada');
    await expectProtectedPage(page, protectedUrl);
    await ctx.shot(page, 'protected-page');

    // Her sign-in keeps the issuer's session id, the ID token's `sid`.
    const [first, ...others] = await signIns(ctx);
    assert.deepEqual(others, [], 'one sign-in');
    assert.equal(first.provider, 'corp');
    assert.match(first.provider_sid ?? '', /^[\w-]{10,}$/, `the ID token's sid is kept: ${JSON.stringify(first)}`);

    // --- The same person on a second device: another issuer session, another sid.
    const device = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const other = await device.newPage();
      await other.goto(protectedUrl);
      await expectSignInFor(other, ctx.app.url, protectedUrl);
      await signInAtIssuer(ctx, other, 'second-device');
      await expectProtectedPage(other, protectedUrl);
      const both = await signIns(ctx);
      assert.equal(both.length, 2, `two sign-ins: ${JSON.stringify(both)}`);
      const second = both.find((row) => row.provider_sid !== first.provider_sid);
      assert.ok(second?.provider_sid, `the second device's sign-in has its own sid: ${JSON.stringify(both)}`);
      assert.equal(second.user_id, first.user_id, 'the same person');

      // --- Forged logout tokens: right claims, her sid and sub, a key the issuer does not
      // publish. Refused at the signature; nothing ended.
      const { privateKey: forger } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const now = Math.floor(Date.now() / 1000);
      const forgedClaims = () => ({
        iss: op.issuer,
        aud: CORP_CLIENT_ID,
        iat: now,
        exp: now + 120,
        jti: randomUUID(),
        sub: 'ada',
        sid: first.provider_sid,
        events: { [LOGOUT_EVENT]: {} },
      });
      const published = await (await fetch(`${op.issuer}/jwks`)).json();
      assert.deepEqual(published.keys.map((key) => key.kid), [op.signingKey.kid], 'the issuer publishes its one key');
      const underIssuersKid = signJwt({ typ: 'logout+jwt', kid: op.signingKey.kid }, forgedClaims(), forger);
      assertRefused(await postLogoutToken(backchannelLogoutUri, underIssuersKid), /signature does not verify/, 'a token forged under the issuer\'s kid');
      const underOwnKid = signJwt({ typ: 'logout+jwt', kid: randomUUID() }, forgedClaims(), forger);
      assertRefused(await postLogoutToken(backchannelLogoutUri, underOwnKid), /key the issuer does not publish/, 'a token forged under a kid of its own');
      assert.deepEqual(endedLines(ctx), [], 'no back-channel logout ended anything');
      assert.equal((await signIns(ctx)).length, 2, 'both sign-ins are still there');
      await page.reload();
      await expectProtectedPage(page, protectedUrl);

      // --- Ada ends her session at the issuer: its logout prompt, confirmed.
      await page.goto(`${op.issuer}/session/end`);
      await page.getByRole('heading', { level: 1, name: /^Do you want to sign-out from/ }).waitFor();
      await ctx.shot(page, 'issuer-logout-prompt');
      await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      await page.getByRole('heading', { level: 1, name: 'Sign-out Success' }).waitFor();
      await ctx.shot(page, 'issuer-signed-out');

      // The issuer posted a logout token for her sid to loginwith, which ended that sign-in.
      const [sent] = await backchannelAnswered(ctx, 1);
      assert.equal(sent.url, backchannelLogoutUri);
      assert.equal(sent.status, 200, `loginwith's answer to the issuer: ${sent.status} ${sent.body}`);
      assert.equal(sent.body, '', 'an empty 200');
      await waitUntil(() => endedLines(ctx).length > 0, 'loginwith logged the back-channel logout', { detail: () => ctx.app.app.log().slice(-3000) });
      const token = claimsOf(sent.logoutToken);
      assert.equal(token.sid, first.provider_sid, `the token names her first sign-in's sid: ${JSON.stringify(token)}`);
      assert.equal(token.sub, 'ada');
      assert.deepEqual(token.events, { [LOGOUT_EVENT]: {} });
      const lines = endedLines(ctx);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0], /provider="?corp"?/, lines[0]);
      assert.match(lines[0], /by="?sid"?/, lines[0]);
      assert.match(lines[0], /ended=1\b/, lines[0]);
      const left = await signIns(ctx);
      assert.deepEqual(left.map((row) => row.provider_sid), [second.provider_sid], `only the second device's sign-in is left: ${JSON.stringify(left)}`);

      // --- The protected URL leads to the sign-in page again; the site saw nothing more.
      const seen = site.seen.length;
      await page.goto(protectedUrl);
      await expectSignInFor(page, ctx.app.url, protectedUrl);
      assert.equal(site.seen.length, seen, 'no request reached the protected site after the logout');
      await ctx.shot(page, 'sign-in-again');

      // The second device, another issuer session, is still let in.
      await other.reload();
      await expectProtectedPage(other, protectedUrl);
      await ctx.shot(other, 'second-device-still-in');

      // --- The issuer's own token, once more: refused as used before; nothing more ended.
      assertRefused(await postLogoutToken(backchannelLogoutUri, sent.logoutToken), /used before/, 'the issuer\'s token replayed');
      assert.equal(endedLines(ctx).length, 1, 'the replay ended nothing');
      assert.deepEqual((await signIns(ctx)).map((row) => row.provider_sid), [second.provider_sid]);
      await other.reload();
      await expectProtectedPage(other, protectedUrl);
    } finally {
      await device.close();
    }

    // nginx passed the page on while she was signed in, then loginwith's sign-in page (302).
    const access = await ctx.app.nginx.accessLog();
    assert.match(access, /"GET \/reports\?year=2026 HTTP\/1\.1" 200/);
    assert.match(access, /"GET \/reports\?year=2026 HTTP\/1\.1" 302/);
  });
});

/**
 * Sends the browser's `request` on to loginwith on 127.0.0.1:`port` (its Host, cookie and
 * body as they are: this process cannot resolve login.example.localhost, which Playwright's
 * route.fetch() would need). Resolves to `{ status, headers, body }`, Set-Cookie lines joined
 * by newlines as route.fulfill() takes them.
 */
async function forward(request, port) {
  const url = new URL(request.url());
  const headers = { ...await request.allHeaders(), host: url.host };
  const body = request.postDataBuffer();
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method: request.method(), path: `${url.pathname}${url.search}`, headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const joined = Object.fromEntries(Object.entries(response.headers)
          .map(([name, value]) => [name, Array.isArray(value) ? value.join('\n') : value]));
        resolve({ status: response.statusCode, headers: joined, body: Buffer.concat(chunks) });
      });
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body ?? undefined);
  });
}

/**
 * What "Log out" answered with `sign_out_at_provider`: 200 with `Refresh: 0;url=…` to the
 * issuer's `endSession` with client_id, post_logout_redirect_uri (the public URL plus a
 * slash) and state, and nothing else. Resolves to `{ target, state }`.
 */
function expectSigningOutAnswer(status, headers, endSession, loginUrl) {
  assert.equal(status, 200, 'the sign-out page, not a redirect');
  const refresh = headers.refresh ?? '';
  const [delay, target] = refresh.split(/;\s*url=/i);
  assert.equal(delay, '0', `Refresh: ${refresh}`);
  const to = new URL(target);
  assert.equal(`${to.origin}${to.pathname}`, endSession, `to the discovered end_session_endpoint: ${target}`);
  assert.deepEqual([...to.searchParams.keys()].sort(), ['client_id', 'post_logout_redirect_uri', 'state'], target);
  assert.equal(to.searchParams.get('client_id'), CORP_CLIENT_ID);
  assert.equal(to.searchParams.get('post_logout_redirect_uri'), `${loginUrl}/`, 'back to the public URL plus a slash');
  const state = to.searchParams.get('state');
  assert.ok(state.length >= 16, `a state: ${target}`);
  assert.match(headers['content-type'] ?? '', /^text\/html/);
  return { target, state };
}

/**
 * On the issuer's logout prompt (`target`, what loginwith sent the browser to), before it is
 * confirmed, loginwith has already ended its sign-in; "Yes, sign me out", then back on
 * loginwith's home page with the state it sent, signed out, after the issuer's back-channel
 * logout (the `count`th) found nothing left to end.
 */
async function confirmAtIssuer(ctx, page, { target, state }, count) {
  const { op } = ctx.app;
  await page.waitForURL((url) => url.href === target);
  await page.getByRole('heading', { level: 1, name: /^Do you want to sign-out from/ }).waitFor();
  assert.deepEqual(await signIns(ctx), [], 'signed out here before the issuer was asked');
  assert.deepEqual((await ctx.context.cookies()).filter((c) => c.name === 'loginwith_session'), [], 'and its cookie removed');
  await ctx.shot(page, `issuer-logout-prompt-${count}`);
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await expectSignedOutHome(page, ctx.app.url);
  assert.equal(new URL(page.url()).searchParams.get('state'), state, `back with loginwith's state: ${page.url()}`);
  await ctx.shot(page, `signed-out-${count}`);
  // Sent before the issuer answered the browser: answered, ending nothing more.
  const sent = (await backchannelAnswered(ctx, count))[count - 1];
  assert.equal(`${sent.status} ${sent.body}`, '200 ', 'loginwith answered the issuer\'s back-channel logout');
  await waitUntil(() => endedLines(ctx).length === count, `loginwith logged back-channel logout ${count}`, { detail: () => ctx.app.app.log().slice(-3000) });
  assert.match(endedLines(ctx)[count - 1], /ended=0\b/, 'which found nothing left to end');
  assert.equal((op.log().match(/end_session\.success/g) ?? []).length, count, 'the issuer ended its session');
}

test('14b: RP-initiated logout: Log out here → signed out here → the issuer\'s logout prompt → back home signed out; the issuer asks who she is again; the page and its link without Refresh', async () => {
  await scenario(browser, 'issuer-logout-rp-initiated', { start: startStack({ gateway: false, signOutAtProvider: true }) }, async (ctx) => {
    const { op } = ctx.app;
    const loginUrl = ctx.app.url;
    const page = await ctx.context.newPage();

    await page.goto(`${loginUrl}/`);
    await expectSignedOutHome(page, loginUrl);
    await ctx.shot(page, 'home');
    await signInAtIssuer(ctx, page, 'ada');
    await onPath(page, '/');
    await page.getByRole('heading', { level: 1, name: 'Hi, Ada!' }).waitFor();
    await ctx.shot(page, 'signed-in');
    assert.equal((await signIns(ctx)).length, 1, 'signed in');

    // The issuer's end-session endpoint as loginwith discovered it.
    const discovery = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
    const endSession = discovery.end_session_endpoint;
    assert.equal(endSession, `${op.issuer}/session/end`, `discovery: ${JSON.stringify(discovery)}`);

    // --- Log out: the answer sends the browser on by itself (its Refresh header) to the
    // issuer's logout prompt, loginwith's own session already ended.
    const [logout] = await Promise.all([
      page.waitForResponse((response) => response.url() === `${loginUrl}/logout` && response.request().method() === 'POST'),
      page.getByRole('button', { name: 'Log out' }).click(),
    ]);
    const first = expectSigningOutAnswer(logout.status(), logout.headers(), endSession, loginUrl);
    await confirmAtIssuer(ctx, page, first, 1);

    // --- The issuer's session ended: Acme SSO asks who she is again; she signs in.
    await signInAtIssuer(ctx, page, 'ada-again');
    await onPath(page, '/');
    await page.getByRole('heading', { level: 1, name: 'Hi, Ada!' }).waitFor();
    assert.equal((await signIns(ctx)).length, 1, 'signed in again');
    await ctx.shot(page, 'signed-in-again');

    // --- A browser that does not follow Refresh (the header removed on its way in; every
    // other header, the cookie's removal among them, kept): the page says where it goes and
    // links there.
    let answer;
    await page.route(`${loginUrl}/logout`, async (route) => {
      answer = await forward(route.request(), ctx.app.app.port);
      const { refresh: _refresh, 'content-length': _length, 'transfer-encoding': _encoding, ...kept } = answer.headers;
      await route.fulfill({ status: answer.status, headers: kept, body: answer.body });
    });
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { level: 1, name: 'You are signed out here' }).waitFor();
    const second = expectSigningOutAnswer(answer.status, answer.headers, endSession, loginUrl);
    assert.notEqual(second.state, first.state, 'a fresh state each time');
    assert.equal(page.url(), `${loginUrl}/logout`);
    assert.match(await page.title(), /^Signing you out · /);
    assert.match(await page.locator('main').innerText(), new RegExp(`Now ending your session at ${CORP} too`));
    const link = page.getByRole('link', { name: `Continue to ${CORP}` });
    assert.equal(await link.getAttribute('href'), second.target, 'the link goes where the Refresh header does');
    assert.deepEqual(await signIns(ctx), [], 'signed out here');
    await ctx.shot(page, 'signing-out');
    await page.unroute(`${loginUrl}/logout`);
    await link.click();
    await confirmAtIssuer(ctx, page, second, 2);
    await corpButton(page).click();
    await expectIssuerLoginPrompt(ctx, page);
    await ctx.shot(page, 'issuer-asks-again');
  });
});
