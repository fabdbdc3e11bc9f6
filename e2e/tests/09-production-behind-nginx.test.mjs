// Scenario 8: production mode as deployed (deploy/nginx, deploy/systemd). loginwith runs with
// LOGINWITH_ENV=production on plain http behind Debian's nginx, which ends TLS with a
// certificate from a CA this test makes with openssl; Facebook is the development provider as
// a process of its own, over https through the same nginx, so loginwith's own calls to it
// (token, /me) succeed only because it trusts the test CA through SSL_CERT_FILE.
//
// Chromium trusts the test certificate through --ignore-certificate-errors-spki-list with the
// leaf's SPKI hash: errors are ignored for that one key and no other, and nothing is added to
// the machine's or the profile's trust store. The page still counts as a secure context
// (the browser accepts the __Host- cookie, which it refuses on anything less).
//
// nginx and openssl must be installed (e2e/run.sh installs them): without them this fails with
// what to install; it never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { expectPreloader, expectSignedIn, expectSignedOut, greeting, onPath, openConsent } from '../lib/flow.mjs';
import { startProductionStack } from '../lib/production.mjs';
import { makeCertificates } from '../lib/tls.mjs';

const SESSION_COOKIE = '__Host-loginwith_session';
const STAND_IN_DIALOG = /^https:\/\/127\.0\.0\.1:\d+\/dialog\/oauth\?/;

let browser;
let certs;
let certDir;
before(async () => {
  certDir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-ca-'));
  certs = await makeCertificates(certDir);
  browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${certs.spki}`] });
});
after(async () => {
  await browser?.close();
  if (certDir) await rm(certDir, { recursive: true, force: true });
});

/** scenario()'s `start` for this file: the whole production stack instead of one app. */
const production = (options = {}) => (config, startOptions) =>
  startProductionStack(certs, config, { ...startOptions, ...options });

test('9a: production behind nginx: __Host- cookie, HSTS, sign in and out over https', async () => {
  // 1.5 s per stand-in call, so the preloader is on screen for about 3 s: long enough to be
  // seen even on a loaded machine (300 ms once let the page move on before it was looked at).
  await scenario(browser, 'production-behind-nginx', { start: production({ latencyMs: 1500 }) }, async (ctx) => {
    const page = await ctx.context.newPage();
    // Every Set-Cookie of the session cookie, as the server sent it through nginx.
    const setCookies = [];
    page.on('response', async (response) => {
      if (!response.url().startsWith(ctx.app.url)) return;
      for (const value of await response.headerValues('set-cookie').catch(() => [])) {
        for (const line of value.split('\n')) {
          if (line.startsWith(`${SESSION_COOKIE}=`)) setCookies.push(line);
        }
      }
    });

    const home = await page.goto(ctx.url('/'));
    assert.equal(home.status(), 200);
    const tls = await home.securityDetails();
    assert.equal(tls?.issuer, 'loginwith e2e test CA', 'the page came over TLS from nginx with the test certificate');
    assert.match(home.headers()['strict-transport-security'] ?? '(none)', /^max-age=\d{7,}/, 'HSTS in production');
    await expectSignedOut(page);
    assert.equal(await page.title(), 'Sign in · loginwith');
    await ctx.shot(page, 'home');

    await openConsent(page, STAND_IN_DIALOG);
    assert.equal(await page.getByLabel('First name').inputValue(), 'Ada');
    await ctx.shot(page, 'consent');

    await page.getByRole('button', { name: 'Allow' }).click();
    await expectPreloader(page);
    await ctx.shot(page, 'preloader');
    await expectSignedIn(page, 'Ada');
    await ctx.shot(page, 'signed-in');

    // The browser kept the cookie under its __Host- name, which it only does for a Secure,
    // Path=/ cookie without Domain from a secure origin; and with the rest of its attributes.
    const cookies = await ctx.context.cookies(ctx.url('/'));
    const session = cookies.find((cookie) => cookie.name === SESSION_COOKIE);
    assert.ok(session, `the session cookie is ${SESSION_COOKIE}; the browser has: ${cookies.map((c) => c.name).join(', ')}`);
    assert.equal(session.secure, true, 'Secure');
    assert.equal(session.httpOnly, true, 'HttpOnly');
    assert.equal(session.sameSite, 'Lax', 'SameSite=Lax');
    assert.equal(session.path, '/', 'Path=/');
    assert.equal(session.domain, 'localhost', 'host-only (no Domain)');
    assert.ok(setCookies.length > 0, 'the server set the session cookie');
    for (const line of setCookies) {
      for (const attribute of [/;\s*Secure(;|$)/i, /;\s*HttpOnly(;|$)/i, /;\s*SameSite=Lax(;|$)/i, /;\s*Path=\/(;|$)/i]) {
        assert.match(line.replace(/^[^;]*/, ''), attribute, `Set-Cookie ${line.replace(/=[^;]*/, '=…')}`);
      }
      assert.doesNotMatch(line, /;\s*Domain=/i, 'no Domain on a __Host- cookie');
    }

    // loginwith's code exchange and profile call went to the stand-in through nginx, over
    // https verified against the test CA.
    const access = await ctx.app.nginx.accessLog();
    const standInPort = new URL(ctx.app.providerUrl).port;
    assert.match(access, new RegExp(`^127\\.0\\.0\\.1 "-" ${standInPort} "POST /oauth/access_token HTTP/1\\.1" 200$`, 'm'), access);
    assert.match(access, new RegExp(`^127\\.0\\.0\\.1 "-" ${standInPort} "GET /me\\?[^"]* HTTP/1\\.1" 200$`, 'm'), access);

    await page.getByRole('button', { name: 'Log out' }).click();
    await onPath(page, '/');
    await expectSignedOut(page);
    assert.equal(await greeting(page, 'Ada').count(), 0);
    await ctx.shot(page, 'signed-out');
    // The removal of a __Host- cookie must itself be Secure or the browser ignores it
    // (tower-sessions builds removals from the name and path alone; loginwith's cookie guard
    // adds Secure): the signed-out cookie is gone from the browser, not just from the server.
    const left = (await page.context().cookies()).filter((c) => c.name === SESSION_COOKIE);
    assert.deepEqual(left, [], `the session cookie is removed at logout: ${JSON.stringify(left)}`);
    await page.reload();
    await expectSignedOut(page);
  });
});

/**
 * GET `path` on the public origin from the loopback address `from`, through nginx, trusting
 * the test CA. Resolves to `{ status, headers }`.
 */
function getFrom(app, from, pathname, headers = {}) {
  const port = Number(new URL(app.url).port);
  return new Promise((resolve, reject) => {
    const request = https.get({
      host: '127.0.0.1',
      port,
      path: pathname,
      servername: 'localhost',
      ca: certs.caPem,
      localAddress: from,
      agent: false,
      headers: { host: `localhost:${port}`, ...headers },
      timeout: 10_000,
    }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers }));
    });
    request.on('error', reject);
    request.on('timeout', () => request.destroy(new Error(`GET ${pathname} from ${from}: no answer`)));
  });
}

// nginx (127.0.0.1) is a trusted proxy: each client has its own bucket, named by what nginx
// appends to X-Forwarded-For, and a client cannot buy a fresh bucket with a forged header
// (X-Forwarded-For or Forwarded) or with bytes that are not text.
test('9b: the rate limiter behind nginx sees each client, not the proxy', async () => {
  const config = {
    'limits.auth_per_minute': 1,
    'limits.auth_burst': 2,
    'server.trusted_proxies': '["127.0.0.1"]',
  };
  await scenario(browser, 'production-rate-limit', { config, start: production() }, async (ctx) => {
    // Two clients on two loopback addresses (all of 127/8 is this machine), so nginx really
    // sees two peers; nginx itself reaches loginwith from 127.0.0.1.
    const [first, second] = ['127.0.0.2', '127.0.0.3'];
    const authorize = '/authorize/facebook';
    for (let i = 1; i <= 2; i += 1) {
      assert.equal((await getFrom(ctx.app, first, authorize)).status, 303, `${first}: start ${i} of the burst of 2`);
    }
    const limited = await getFrom(ctx.app, first, authorize);
    assert.equal(limited.status, 429, `${first}: past its burst`);
    assert.ok(limited.headers['retry-after'], 'a 429 says when to retry');

    const other = await getFrom(ctx.app, second, authorize);
    assert.equal(other.status, 303, `${second} has a bucket of its own: loginwith reads it from X-Forwarded-For`);
    // nginx appends the real peer to whatever the client sent; loginwith reads from the
    // right, so the forged address is never reached.
    const forged = await getFrom(ctx.app, first, authorize, { 'x-forwarded-for': '198.51.100.7' });
    assert.equal(forged.status, 429, `${first} cannot escape its bucket with a forged X-Forwarded-For`);
    // nginx passes a client's own Forwarded on untouched, and keeps bytes that are not text in
    // front of its entry: loginwith reads only X-Forwarded-For, split as bytes, so neither
    // moves the client to another bucket (such as nginx's own, which every client would share).
    for (const headers of [{ forwarded: 'for=198.51.100.8' }, { 'x-forwarded-for': '\xff\xfe' }]) {
      const escape = await getFrom(ctx.app, first, authorize, headers);
      assert.equal(escape.status, 429, `${first} cannot escape its bucket with ${JSON.stringify(headers)}`);
    }

    const access = await ctx.app.nginx.accessLog();
    for (const client of [first, second]) {
      assert.match(access, new RegExp(`^${client.replaceAll('.', '\\.')} `, 'm'), `nginx saw ${client} as a peer:\n${access}`);
    }
  });
});
