// Scenario 12: forward authentication behind Debian's nginx. A site of someone's own
// (app.example.localhost, a small page in this test process that greets X-Auth-Request-Name) is
// protected by nginx's auth_request against loginwith's GET /auth/check, with the very site
// file of deploy/nginx/forward-auth.conf (only its names, ports and TLS lines are replaced,
// and every replacement must match, so the file cannot drift away from what is tested).
// loginwith is login.example.localhost with session.cookie_domain = example.localhost, so its
// cookie reaches the app's host; Chromium resolves both names to loopback (--host-resolver-rules,
// besides its own rule for .localhost). Names below .localhost because loginwith offers the
// development provider only at a loopback public URL.
//
// Opening the protected URL leads to the sign-in page, the development provider's consent
// page and back to the protected URL, which greets the person by a name with markup and an
// emoji (shown as text). After signing out on loginwith's home page, the protected URL leads
// to the sign-in page again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, copyFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, startApp } from '../lib/app.mjs';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { continueButton, expectSignedIn, expectSignedOut, greeting, onPath, openConsent } from '../lib/flow.mjs';
import { nginxSite } from '../lib/gateway.mjs';
import { startNginxServers } from '../lib/nginx.mjs';

const LOGIN_HOST = 'login.example.localhost';
const APP_HOST = 'app.example.localhost';
const FIRST = 'Zoë <i>🦀</i>';
const LAST = "O'Brien";
const FULL_NAME = `${FIRST} ${LAST}`;

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
 * loudly without it. Every request's X-Auth-Request-* headers are kept for the assertions.
 */
async function startGreetingPage() {
  const seen = [];
  const server = http.createServer((request, response) => {
    const headers = Object.fromEntries(
      Object.entries(request.headers).filter(([name]) => name.startsWith('x-auth-request-')),
    );
    seen.push({ url: request.url, headers });
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
<p>Signed in with ${escapeHtml(decodeURIComponent(request.headers['x-auth-request-provider'] ?? ''))}
as ${escapeHtml(decodeURIComponent(request.headers['x-auth-request-email'] ?? ''))}.</p></main></body></html>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    seen,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** scenario()'s `start`: the greeting page, loginwith on login.example.localhost, nginx in front. */
async function startStack(config, { logFile }) {
  const stopping = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  try {
    const page = await startGreetingPage();
    stopping.push(page.stop);
    const appPort = await freePort();
    const app = await startApp({
      'server.public_url': `http://${LOGIN_HOST}:${appPort}`,
      'session.cookie_domain': 'example.localhost',
      'gateway.allowed_hosts': APP_HOST,
      // nginx is the peer, as in production: loginwith reads the protected URL from its
      // X-Original-URL and answers the 401 auth_request needs, with the sign-in page (that URL
      // as return_to) in Location, which nginx sends on as a 302.
      'server.trusted_proxies': '127.0.0.1',
      ...config,
    }, { logFile, port: appPort, readyHost: `${LOGIN_HOST}:${appPort}` });
    stopping.push(app.stop);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-forward-auth-'));
    stopping.push(() => rm(dir, { recursive: true, force: true }));
    const nginxPort = await freePort();
    const servers = await nginxSite({ host: APP_HOST, port: nginxPort, appPort, sitePort: page.port });
    const nginx = await startNginxServers({ dir, servers, ports: [nginxPort] });
    stopping.push(async () => {
      const artifacts = path.dirname(logFile);
      await mkdir(artifacts, { recursive: true });
      for (const name of ['nginx.conf', 'error.log', 'access.log']) {
        await copyFile(path.join(dir, name), path.join(artifacts, `nginx-${name}`)).catch(() => {});
      }
    });
    stopping.push(nginx.stop);
    return {
      url: `http://${LOGIN_HOST}:${appPort}`,
      protectedUrl: `http://${APP_HOST}:${nginxPort}/reports?year=2026`,
      page,
      nginx,
      log: () => app.log(),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The sign-in page, reached from the protected URL with it as `return_to`. */
async function expectSignInFor(page, loginUrl, protectedUrl) {
  await page.waitForURL((url) => url.origin === loginUrl && url.pathname === '/');
  assert.equal(new URL(page.url()).searchParams.get('return_to'), protectedUrl);
  await expectSignedOut(page);
}

test('nginx auth_request: protected page → sign in → greeted by name; signed out → sign in again', async () => {
  await scenario(browser, 'forward-auth-nginx', { start: startStack }, async (ctx) => {
    const { protectedUrl } = ctx.app;
    const page = await ctx.context.newPage();
    // A browser claiming a verified address of its own: nginx must replace it with loginwith's.
    await page.setExtraHTTPHeaders({ 'X-Auth-Request-Email-Verified': 'true' });

    await page.goto(protectedUrl);
    await expectSignInFor(page, ctx.app.url, protectedUrl);
    assert.equal(ctx.app.page.seen.length, 0, 'nothing reached the protected site');
    await ctx.shot(page, 'sign-in');

    await openConsent(page);
    await page.getByLabel('First name').fill(FIRST);
    await page.getByLabel('Last name').fill(LAST);
    await page.getByLabel('Email').fill('zoe@example.com');
    await ctx.shot(page, 'consent');
    await page.getByRole('button', { name: 'Allow' }).click();

    // Preloader, /success, then back where the person was going.
    // The fragment aside: the stand-in, like Facebook, appends `#_=_`, which the browser
    // carries across the callback's redirects; a page of the protected site is not
    // loginwith's, so no script of ours removes it there.
    await page.waitForURL((url) => `${url.origin}${url.pathname}${url.search}` === protectedUrl);
    const hello = page.getByRole('heading', { level: 1, name: `Hello, ${FULL_NAME}` });
    await hello.waitFor();
    assert.equal(await hello.innerText(), `Hello, ${FULL_NAME}`);
    assert.equal(await page.locator('h1 i').count(), 0, 'the name is text, never markup');
    assert.match(await page.locator('main p').innerText(), /Signed in with facebook as zoe@example\.com\./);
    await ctx.shot(page, 'protected-page');

    // The app got who it is from nginx, percent-encoded as README says.
    const [request] = ctx.app.page.seen;
    assert.equal(request.url, '/reports?year=2026');
    assert.match(request.headers['x-auth-request-user'], /^\d+$/);
    assert.equal(request.headers['x-auth-request-name'], "Zo%C3%AB%20<i>%F0%9F%A6%80</i>%20O'Brien");
    assert.equal(request.headers['x-auth-request-provider'], 'facebook');
    // Facebook never verifies an address; the browser's own "true" did not get through.
    assert.equal(request.headers['x-auth-request-email'], 'zoe@example.com');
    assert.equal(request.headers['x-auth-request-email-verified'], 'false');

    // One cookie, for the whole domain, as session.cookie_domain says.
    const cookies = (await ctx.context.cookies()).filter((c) => c.name === 'loginwith_session');
    assert.equal(cookies.length, 1, JSON.stringify(cookies));
    assert.equal(cookies[0].domain, '.example.localhost');
    assert.equal(cookies[0].httpOnly, true);

    // Signing out on loginwith's home page removes that cookie (with its Domain)...
    await page.goto(`${ctx.app.url}/`);
    await expectSignedIn(page, FIRST);
    await page.getByRole('button', { name: 'Log out' }).click();
    await onPath(page, '/');
    await expectSignedOut(page);
    assert.equal(await greeting(page, FIRST).count(), 0);
    assert.deepEqual((await ctx.context.cookies()).filter((c) => c.name === 'loginwith_session'), []);
    await ctx.shot(page, 'signed-out');

    // ... so the protected URL leads to the sign-in page again, and the site saw nothing more.
    const seen = ctx.app.page.seen.length;
    await page.goto(protectedUrl);
    await expectSignInFor(page, ctx.app.url, protectedUrl);
    await continueButton(page).waitFor();
    assert.equal(ctx.app.page.seen.length, seen, 'no request reached the protected site signed out');
    await ctx.shot(page, 'sign-in-again');

    // Every check was answered by loginwith through nginx (200 once signed in, 401 otherwise).
    const access = await ctx.app.nginx.accessLog();
    assert.match(access, /"GET \/reports\?year=2026 HTTP\/1\.1" 200/);
    assert.match(access, /"GET \/reports\?year=2026 HTTP\/1\.1" 302/);
  });
});
