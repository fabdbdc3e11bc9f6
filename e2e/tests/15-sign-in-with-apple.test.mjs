// Scenario 15: Sign in with Apple (`kind = "apple"`) in production as deployed. loginwith runs
// with LOGINWITH_ENV=production on plain http behind Debian's nginx, which ends TLS at
// https://localhost:PORT with a certificate from a CA the test makes (as scenario 9). Apple is
// lib/apple-stand-in.mjs, an imitation written from Apple's documentation, in this process,
// reached over https through the same nginx at https://127.0.0.1:OTHER (loginwith trusts the
// test CA only through SSL_CERT_FILE; production refuses an http issuer). localhost and
// 127.0.0.1 are different sites, so the stand-in's posted answer (response_mode=form_post)
// is a real cross-site POST in Chromium, which leaves loginwith's SameSite=Lax cookies off it.
//
// loginwith is configured by environment variables exactly as README.md's "Connect Sign in
// with Apple" has them (LOGINWITH_PROVIDERS__APPLE__CLIENT_ID, __TEAM_ID, __KEY_ID,
// __PRIVATE_KEY: a P-256 key the test makes, as the .p8 file's PKCS #8 PEM), plus __ISSUER
// (the stand-in's address instead of https://appleid.apple.com).
//
// 15a: Continue with Apple (black, the Apple mark) → the stand-in's consent (the name, with
// markup and an emoji, and Hide My Email) → its self-posting form → loginwith's relay page →
// the same fields posted again from loginwith's own page → preloader → "Hi, Ada <i>🍏</i>!" as
// text; the cross-site POST carried no loginwith cookie, the same-site one the pre-sign-in
// cookie. Log out → Continue with Apple → the stand-in sends no `user` field this time and the
// greeting keeps the first name. Two token requests, each with a fresh client secret that
// the stand-in verified (ES256, kid, iss, sub, aud, iat, exp).
// 15b: the same with JavaScript off: the stand-in's Continue, then the relay page's.
// 15c: loginwith holding another key than the one registered at Apple: the stand-in refuses
// the client secret (invalid_client), which is the site's to fix: the person reads
// "Something went wrong on our side", the log says which keys to check.
// 15d: Cancel at Apple, which posts error=user_cancelled_authorize (Apple's documented code).
// 15e: a cross-site POST to /callback/apple/continue carrying the victim's own state (as if
// stolen) arrives without loginwith's cookies and is refused; the victim's sign-in goes on.
//
// nginx, openssl and Chromium must be installed (e2e/run.sh sees to them): without them this
// fails saying what is missing; it never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort, startApp } from '../lib/app.mjs';
import {
  APPLE_AUDIENCE, appleId, appleSubject, makeTeamKey, startAppleStandIn,
} from '../lib/apple-stand-in.mjs';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { expectErrorPage, onPath, PRELOADER } from '../lib/flow.mjs';
import { startNginx } from '../lib/nginx.mjs';
import { query } from '../lib/sqlite.mjs';
import { makeCertificates } from '../lib/tls.mjs';

const CLIENT_ID = 'com.example.web';
const SIGN_IN_COOKIE = '__Host-loginwith_session_signin';
// The name the person keeps in Apple's consent page: markup and an emoji, shown as text.
const FIRST_NAME = 'Ada <i>🍏</i>';
const LAST_NAME = 'Lovelace';
const APPLE_ID_EMAIL = 'ada.lovelace@example.com';

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

/** Three loopback ports, distinct. */
async function freePorts(count) {
  const ports = new Set();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * scenario()'s `start`: the stand-in, nginx in front of it and of loginwith's port, then
 * loginwith (which discovers the issuer at start-up, through nginx). Options: `latencyMs`
 * (the stand-in's token endpoint), `wrongKey` (loginwith gets another P-256 key than the one
 * registered at the stand-in, under the same team and key ids). A port taken meanwhile is
 * retried with others.
 */
const appleStack = (options = {}) => async (config, { logFile }) => {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startAppleStack(config, { logFile, ...options });
    } catch (error) {
      lastError = error;
      if (!error.portTaken) throw error;
    }
  }
  throw lastError;
};

async function startAppleStack(config, { logFile, latencyMs = 0, wrongKey = false }) {
  const [publicPort, providerPort, appPort] = await freePorts(3);
  const url = `https://localhost:${publicPort}`;
  const issuer = `https://127.0.0.1:${providerPort}`;
  const teamId = appleId();
  const keyId = appleId();
  const teamKey = makeTeamKey();
  // The .p8 file loginwith is given: the registered key's, or another key altogether.
  const given = wrongKey ? makeTeamKey() : teamKey;
  const account = {
    sub: appleSubject(),
    firstName: FIRST_NAME,
    lastName: LAST_NAME,
    email: APPLE_ID_EMAIL,
    relayEmail: `${appleId().toLowerCase()}@privaterelay.appleid.com`,
  };

  const stopping = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-apple-'));
  stopping.push(() => rm(dir, { recursive: true, force: true }));
  const artifacts = logFile ? path.dirname(logFile) : undefined;
  try {
    const standIn = await startAppleStandIn({
      issuer,
      client: { clientId: CLIENT_ID, teamId, keyId, publicKey: teamKey.publicKey, redirectUri: `${url}/callback/apple` },
      account,
      latencyMs,
    });
    stopping.push(standIn.stop);
    stopping.push(async () => {
      if (!artifacts) return;
      await mkdir(artifacts, { recursive: true });
      await writeFile(path.join(artifacts, 'apple-stand-in.log'), `${standIn.log()}\n`);
    });
    const nginx = await startNginx({
      dir,
      caPem: certs.caPem,
      certificateFile: certs.certificateFile,
      keyFile: certs.keyFile,
      app: { port: publicPort, upstream: `127.0.0.1:${appPort}` },
      standIn: { port: providerPort, upstream: standIn.upstream },
    });
    stopping.push(async () => {
      if (!artifacts) return;
      await mkdir(artifacts, { recursive: true });
      for (const name of ['nginx.conf', 'error.log', 'access.log']) {
        await copyFile(path.join(dir, name), path.join(artifacts, `nginx-${name}`)).catch(() => {});
      }
    });
    stopping.push(nginx.stop);
    const app = await startApp({
      env: 'production',
      'server.public_url': url,
      ...config,
    }, {
      logFile,
      port: appPort,
      readyHost: `localhost:${publicPort}`,
      env: {
        SSL_CERT_FILE: certs.caFile,
        // README.md's "Connect Sign in with Apple", the key as its text.
        LOGINWITH_PROVIDERS__APPLE__CLIENT_ID: CLIENT_ID,
        LOGINWITH_PROVIDERS__APPLE__TEAM_ID: teamId,
        LOGINWITH_PROVIDERS__APPLE__KEY_ID: keyId,
        LOGINWITH_PROVIDERS__APPLE__PRIVATE_KEY: given.pem,
        LOGINWITH_PROVIDERS__APPLE__ISSUER: issuer,
      },
    });
    stopping.push(app.stop);
    return {
      url,
      port: publicPort,
      app,
      nginx,
      standIn,
      issuer,
      teamId,
      keyId,
      account,
      log: () => `${app.log()}\n--- apple stand-in ---\n${standIn.log()}`,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function appleButton(page) {
  return page.getByRole('link', { name: 'Continue with Apple' });
}

/** The signed-out home page: the Apple button, no Log out. */
async function expectSignedOut(page) {
  await onPath(page, '/');
  await appleButton(page).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Log out' }).count(), 0, 'no Log out button when signed out');
}

/** The signed-in home page, greeting the first name as text (its markup made no element). */
async function expectSignedIn(page) {
  await onPath(page, '/');
  const heading = page.getByRole('heading', { level: 1, name: `Hi, ${FIRST_NAME}!` });
  await heading.waitFor();
  await page.getByRole('button', { name: 'Log out' }).waitFor();
  assert.equal(await appleButton(page).count(), 0, 'no sign-in button when signed in');
  assert.equal(await heading.innerText(), `Hi, ${FIRST_NAME}!`);
  assert.equal(await heading.locator('i, b, script').count(), 0, 'the name\'s markup made no element');
  assert.ok((await heading.innerHTML()).includes('Ada &lt;i&gt;🍏&lt;/i&gt;'), 'the markup is escaped in the HTML');
}

/** loginwith's preloader, talking to Apple. */
async function expectPreloader(page) {
  await page.waitForURL(PRELOADER);
  const status = page.locator('#status');
  await status.waitFor();
  assert.match(await status.innerText(), /Talking to Apple/);
}

/** Waits until `page` shows the stand-in's `pathname`. */
async function onStandIn(page, issuer, pathname) {
  await page.waitForURL((url) => url.origin === issuer && url.pathname === pathname);
}

/** The home page's Apple button: black, white text, the Apple mark loaded, its name. */
async function expectAppleButton(page) {
  const button = appleButton(page);
  assert.equal(await button.count(), 1, 'one Continue with Apple button');
  const look = await button.evaluate((a) => {
    const style = getComputedStyle(a);
    const img = a.querySelector('img');
    const box = a.getBoundingClientRect();
    return {
      classes: [...a.classList],
      background: style.backgroundColor,
      color: style.color,
      text: a.innerText.trim(),
      height: box.height,
      img: img && {
        src: img.getAttribute('src'),
        alt: img.getAttribute('alt'),
        loaded: img.complete && img.naturalWidth > 0,
        leftOfText: img.getBoundingClientRect().right <= (a.querySelector('span')?.getBoundingClientRect().left ?? 0),
      },
    };
  });
  assert.ok(look.classes.includes('button-apple'), `classes ${look.classes.join(' ')}`);
  assert.equal(look.background, 'rgb(0, 0, 0)', 'black, as Apple\'s "black" button');
  assert.equal(look.color, 'rgb(255, 255, 255)', 'white text');
  assert.equal(look.text, 'Continue with Apple');
  assert.ok(look.height >= 44, `at least 44 px high (${look.height})`);
  assert.ok(look.img, 'the Apple mark is in the button');
  assert.match(look.img.src, /\/apple-mark\.svg(\?|$)/);
  assert.equal(look.img.alt, '', 'the mark is decoration: the text names the button');
  assert.ok(look.img.loaded, 'the mark loaded');
  assert.ok(look.img.leftOfText, 'the mark is left of the title, as Apple draws it');
}

/**
 * Every POST navigation to loginwith in `page`: `{ path, fields, headers: Promise }`, the
 * headers as the browser sent them (cookies included).
 */
function recordPosts(page, origin) {
  const posts = [];
  page.on('request', (request) => {
    if (request.method() !== 'POST' || !request.isNavigationRequest()) return;
    const url = new URL(request.url());
    if (url.origin !== origin) return;
    posts.push({
      path: url.pathname,
      fields: Object.fromEntries(new URLSearchParams(request.postData() ?? '')),
      headers: request.allHeaders().catch(() => request.headers()),
    });
  });
  return posts;
}

function cookieNames(headers) {
  return (headers.cookie ?? '').split(';').map((pair) => pair.trim().split('=')[0]).filter(Boolean);
}

/**
 * The `index`th answer's two POSTs: Apple's cross-site one to /callback/apple without any
 * loginwith cookie, and the relay's same-site one to /callback/apple/continue with the
 * pre-sign-in cookie, carrying exactly the same fields. Returns those fields and both cookie
 * lists.
 */
async function expectRelayed(posts, index, app) {
  const callbacks = posts.filter((p) => p.path === '/callback/apple');
  const continued = posts.filter((p) => p.path === '/callback/apple/continue');
  assert.ok(callbacks[index] && continued[index], `POSTs seen: ${posts.map((p) => p.path).join(', ')}`);
  const [cross, same] = [await callbacks[index].headers, await continued[index].headers];
  assert.equal(cross['sec-fetch-site'], 'cross-site', 'Apple\'s answer is a cross-site POST');
  assert.equal(cross.origin, app.issuer, 'posted from the stand-in\'s page');
  const crossCookies = cookieNames(cross);
  assert.deepEqual(crossCookies.filter((name) => name.includes('loginwith')), [], `no loginwith cookie on the cross-site POST: ${crossCookies.join(', ') || '(none)'}`);
  assert.equal(same['sec-fetch-site'], 'same-origin', 'the relay posts from loginwith\'s own page');
  // The relay page is served with Referrer-Policy: no-referrer, under which Chromium sends
  // `Origin: null` with its form's POST: that step must not (and does not) depend on Origin.
  assert.ok([app.url, 'null'].includes(same.origin), `Origin of the relayed POST: ${same.origin}`);
  const sameCookies = cookieNames(same);
  assert.ok(sameCookies.includes(SIGN_IN_COOKIE), `the pre-sign-in cookie (${SIGN_IN_COOKIE}) comes along: ${sameCookies.join(', ')}`);
  assert.deepEqual(continued[index].fields, callbacks[index].fields, 'the relay posts exactly what Apple posted');
  return { fields: callbacks[index].fields, crossCookies, sameCookies };
}

/** The authorization request loginwith sent the stand-in (the `index`th). */
function expectAuthorizationRequest(app, index) {
  const request = app.standIn.authorizations[index];
  assert.ok(request, `authorization ${index + 1} reached the stand-in`);
  const sent = request.params;
  assert.equal(sent.client_id, CLIENT_ID);
  assert.equal(sent.redirect_uri, `${app.url}/callback/apple`);
  assert.equal(sent.response_type, 'code');
  assert.equal(sent.response_mode, 'form_post', 'form_post, which Apple requires with name or email');
  assert.deepEqual((sent.scope ?? '').split(' ').sort(), ['email', 'name', 'openid']);
  assert.equal(sent.code_challenge_method, 'S256');
  assert.ok((sent.state ?? '').length >= 22, 'a state');
  assert.ok((sent.nonce ?? '').length >= 22, 'a nonce');
  return sent;
}

/** A token request the stand-in accepted: client_secret_post, the secret verified, fresh. */
function expectTokenRequest(app, entry, authorization) {
  assert.equal(entry.status, 200, `the stand-in accepted the token request: ${JSON.stringify(entry)}`);
  assert.equal(entry.basicAuth, false, 'no Authorization header: client_secret_post');
  assert.deepEqual(entry.params, ['client_id', 'client_secret', 'code', 'code_verifier', 'grant_type', 'redirect_uri']);
  assert.equal(entry.grantType, 'authorization_code');
  assert.equal(entry.clientId, CLIENT_ID);
  assert.equal(entry.redirectUri, `${app.url}/callback/apple`);
  assert.equal(entry.secret.verified, true, 'the client secret verified with the registered public key');
  assert.equal(entry.secret.header.alg, 'ES256');
  assert.equal(entry.secret.header.kid, app.keyId);
  const { claims } = entry.secret;
  assert.equal(claims.iss, app.teamId);
  assert.equal(claims.sub, CLIENT_ID);
  assert.equal(claims.aud, APPLE_AUDIENCE);
  assert.equal(claims.exp - claims.iat, 300, 'valid five minutes');
  const sentAt = Math.floor(Date.parse(entry.at) / 1000);
  assert.ok(Math.abs(sentAt - claims.iat) <= 5, `issued for this request (iat ${claims.iat}, request at ${sentAt})`);
  assert.equal(entry.idToken.nonce, authorization.nonce, 'the ID token carries the nonce sent');
}

/** Every main-frame navigation of `page`, as `METHOD origin+path`, in order. */
function recordNavigations(page) {
  const visited = [];
  page.on('request', (request) => {
    if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
    const url = new URL(request.url());
    visited.push(`${request.method()} ${url.origin}${url.pathname}`);
  });
  return visited;
}

/** Asserts that `steps` occur in `visited` in this order (others may come between); returns the index after the last. */
function assertInOrder(visited, steps) {
  let at = 0;
  for (const step of steps) {
    const found = visited.indexOf(step, at);
    assert.ok(found >= 0, `${step} after ${visited[at - 1] ?? 'the start'}; the navigations:\n${visited.join('\n')}`);
    at = found + 1;
  }
  return at;
}

/** A plain-http page on 127.0.0.1 (another site than loginwith's): `{ url, stop() }`. */
async function serveOnce(html) {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

test('15a: Sign in with Apple in production behind nginx: the posted answer relayed, the name kept, a fresh client secret each time', async () => {
  // 1.5 s at the token endpoint: the preloader is on screen long enough to be seen.
  await scenario(browser, 'sign-in-with-apple', { start: appleStack({ latencyMs: 1500 }) }, async (ctx) => {
    const { standIn, issuer, account } = ctx.app;
    const page = await ctx.context.newPage();
    const posts = recordPosts(page, ctx.app.url);
    const visited = recordNavigations(page);
    const relayPages = [];
    page.on('response', (response) => {
      const request = response.request();
      if (request.method() === 'POST' && response.url() === ctx.url('/callback/apple')) relayPages.push(response);
    });

    // loginwith discovered the stand-in at start-up, through nginx.
    const byLoginwith = standIn.requests.filter((r) => r.userAgent.startsWith('loginwith/')).map((r) => `${r.method} ${r.path} ${r.status}`);
    assert.ok(byLoginwith.includes('GET /.well-known/openid-configuration 200'), `discovery: ${byLoginwith.join('; ')}`);

    const home = await page.goto(ctx.url('/'));
    assert.equal(home.status(), 200);
    assert.equal((await home.securityDetails())?.issuer, 'loginwith e2e test CA', 'https through nginx');
    await expectSignedOut(page);
    await expectAppleButton(page);
    await ctx.shot(page, 'home');

    // --- First sign-in: Apple's consent with the name and the address choice.
    await appleButton(page).click();
    await onStandIn(page, issuer, '/auth/authorize');
    const first = expectAuthorizationRequest(ctx.app, 0);
    assert.equal(await page.getByLabel('First name').inputValue(), FIRST_NAME);
    assert.equal(await page.getByLabel('Last name').inputValue(), LAST_NAME);
    await page.getByLabel(/Hide My Email/).check();
    await ctx.shot(page, 'apple-consent');
    await page.getByRole('button', { name: 'Continue' }).click();

    await expectPreloader(page);
    await ctx.shot(page, 'preloader');
    await expectSignedIn(page);
    await ctx.shot(page, 'signed-in');

    // The way there: Apple's pages, its posted answer, the relay page's own post (by
    // form-post.js: nobody pressed its button), the preloader, /success, home.
    const flow = (app) => [
      `GET ${app.url}/authorize/apple`,
      `GET ${app.issuer}/auth/authorize`,
      `POST ${app.issuer}/auth/consent`,
      `POST ${app.url}/callback/apple`,
      `POST ${app.url}/callback/apple/continue`,
      `GET ${app.url}/preloader`,
      `GET ${app.url}/success`,
      `GET ${app.url}/`,
    ];
    const firstTrip = assertInOrder(visited, flow(ctx.app));

    // Apple posted code, state and user cross-site; loginwith's page posted them again.
    const once = await expectRelayed(posts, 0, ctx.app);
    assert.deepEqual(Object.keys(once.fields).sort(), ['code', 'state', 'user']);
    assert.equal(once.fields.state, first.state);
    assert.deepEqual(JSON.parse(once.fields.user), {
      name: { firstName: FIRST_NAME, lastName: LAST_NAME },
      email: account.relayEmail,
    });
    assert.equal(relayPages.length, 1, 'one relay page');
    const relay = relayPages[0];
    assert.equal(relay.status(), 200);
    assert.match(relay.headers()['cache-control'] ?? '', /no-store/, 'the page holding the code is not stored');
    assert.equal(relay.headers()['referrer-policy'], 'no-referrer');
    const session = (await ctx.context.cookies(ctx.url('/'))).find((c) => c.name === '__Host-loginwith_session');
    assert.ok(session?.secure && session.httpOnly && session.sameSite === 'Lax', `the __Host- session cookie: ${JSON.stringify(session)}`);

    // One token request: client_secret_post with a secret the stand-in verified.
    assert.equal(standIn.tokenRequests.length, 1);
    expectTokenRequest(ctx.app, standIn.tokenRequests[0], first);
    assert.equal(standIn.tokenRequests[0].idToken.email_verified, 'true', 'a string, as Apple sends it');
    assert.equal(standIn.tokenRequests[0].idToken.is_private_email, 'true');

    // The person: the name from the user field, the relay address from the ID token,
    // verified; the identity is Apple's sub at this issuer.
    assert.deepEqual(await query(ctx.app.app, 'SELECT first_name, last_name, email, email_verified_by FROM user_profile'), [
      { first_name: FIRST_NAME, last_name: LAST_NAME, email: account.relayEmail, email_verified_by: 'apple' },
    ]);
    assert.deepEqual(await query(ctx.app.app, 'SELECT provider, provider_user_id, issuer FROM user_identity'), [
      { provider: 'apple', provider_user_id: account.sub, issuer },
    ]);

    // --- Log out.
    await page.getByRole('button', { name: 'Log out' }).click();
    await expectSignedOut(page);
    await ctx.shot(page, 'signed-out');
    assert.deepEqual((await ctx.context.cookies()).filter((c) => c.name === '__Host-loginwith_session'), [], 'the session cookie is gone');

    // --- Second sign-in: Apple only asks to continue, and sends no name.
    await appleButton(page).click();
    await onStandIn(page, issuer, '/auth/authorize');
    const second = expectAuthorizationRequest(ctx.app, 1);
    assert.notEqual(second.state, first.state, 'a fresh state');
    assert.notEqual(second.nonce, first.nonce, 'a fresh nonce');
    await page.getByText(`continue using ${CLIENT_ID} with your Apple ID`).waitFor();
    assert.equal(await page.getByLabel('First name').count(), 0, 'no name asked the second time');
    await ctx.shot(page, 'apple-consent-again');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expectPreloader(page);
    await ctx.shot(page, 'preloader-again');
    await expectSignedIn(page);
    await ctx.shot(page, 'signed-in-again');

    assertInOrder(visited.slice(firstTrip), flow(ctx.app));
    const twice = await expectRelayed(posts, 1, ctx.app);
    assert.deepEqual(Object.keys(twice.fields).sort(), ['code', 'state'], 'no user field the second time');
    assert.equal(twice.fields.state, second.state);
    assert.equal(standIn.formPosts[1].user, undefined);

    assert.equal(standIn.tokenRequests.length, 2, 'exactly two token requests');
    expectTokenRequest(ctx.app, standIn.tokenRequests[1], second);
    const [a, b] = standIn.tokenRequests.map((r) => r.secret);
    assert.notEqual(a.sha256, b.sha256, 'a new client secret for the second request');
    assert.ok(b.claims.iat >= a.claims.iat, 'issued no earlier than the first');

    // Still one person, with the first sign-in's name.
    assert.deepEqual(await query(ctx.app.app, 'SELECT first_name, last_name, email FROM user_profile'), [
      { first_name: FIRST_NAME, last_name: LAST_NAME, email: account.relayEmail },
    ]);
    assert.equal((await query(ctx.app.app, 'SELECT COUNT(*) AS n FROM user_identity'))[0].n, 1);

    // loginwith's calls went through nginx over https: discovery, keys, two token requests.
    const access = await ctx.app.nginx.accessLog();
    const port = new URL(issuer).port;
    const fromLoginwith = (request) => new RegExp(`^127\\.0\\.0\\.1 "-" ${port} "${request} HTTP/1\\.1" 200$`, 'gm');
    assert.equal((access.match(fromLoginwith('POST /auth/token')) ?? []).length, 2, access);
    assert.match(access, fromLoginwith('GET /\\.well-known/openid-configuration'), access);
    assert.match(access, fromLoginwith('GET /auth/keys'), access);
  });
});

test('15b: Sign in with Apple without JavaScript: the Continue buttons of both posted forms', async () => {
  const config = { 'login.poll_interval_ms': 1000 };
  await scenario(browser, 'sign-in-with-apple-no-javascript', {
    config,
    context: { javaScriptEnabled: false },
    start: appleStack({ latencyMs: 1500 }),
  }, async (ctx) => {
    const { standIn, issuer } = ctx.app;
    const page = await ctx.context.newPage();
    const posts = recordPosts(page, ctx.app.url);

    await page.goto(ctx.url('/'));
    await expectSignedOut(page);
    await expectAppleButton(page);
    await ctx.shot(page, 'home');

    await appleButton(page).click();
    await onStandIn(page, issuer, '/auth/authorize');
    const sent = expectAuthorizationRequest(ctx.app, 0);
    await ctx.shot(page, 'apple-consent');
    await page.getByRole('button', { name: 'Continue' }).click();

    // The stand-in's answer does not post itself without script: its Continue does.
    await onStandIn(page, issuer, '/auth/consent');
    await page.getByRole('heading', { level: 1, name: `Returning to localhost:${ctx.app.port}` }).waitFor();
    await ctx.shot(page, 'apple-form-post');
    await page.getByRole('button', { name: 'Continue' }).click();

    // loginwith's relay page, which no script submits here either.
    await onPath(page, '/callback/apple');
    await page.getByRole('heading', { level: 1, name: 'Signing you in' }).waitFor();
    assert.match(await page.locator('main').innerText(), /Apple has answered\. One more step on this site finishes signing you in\./);
    assert.equal(await page.title(), 'Signing you in · loginwith');
    const form = page.locator('form#relay');
    assert.equal(await form.getAttribute('method'), 'post');
    assert.equal(await form.getAttribute('action'), '/callback/apple/continue');
    const hidden = await form.locator('input[type=hidden]').evaluateAll((inputs) => inputs.map((i) => [i.name, i.value]));
    assert.deepEqual(hidden.map(([name]) => name).sort(), ['code', 'state', 'user']);
    assert.equal(Object.fromEntries(hidden).state, sent.state);
    assert.equal(Object.fromEntries(hidden).user, standIn.formPosts[0].user, 'the user field passed on unchanged');
    await ctx.shot(page, 'relay');
    await page.getByRole('button', { name: 'Continue' }).click();

    await expectPreloader(page);
    assert.equal(await page.locator('head meta[http-equiv="refresh"]').count(), 1, 'the <noscript> refresh is live');
    await ctx.shot(page, 'preloader');
    await expectSignedIn(page);
    await ctx.shot(page, 'signed-in');

    await expectRelayed(posts, 0, ctx.app);
    assert.equal(standIn.tokenRequests.length, 1);
    expectTokenRequest(ctx.app, standIn.tokenRequests[0], sent);

    await page.getByRole('button', { name: 'Log out' }).click();
    await expectSignedOut(page);
    await ctx.shot(page, 'signed-out');
  });
});

test('15c: a key Apple does not have: the client secret is refused, the site\'s fault', async () => {
  await scenario(browser, 'sign-in-with-apple-wrong-key', { start: appleStack({ wrongKey: true }) }, async (ctx) => {
    const { standIn, issuer } = ctx.app;
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await expectSignedOut(page);
    await appleButton(page).click();
    await onStandIn(page, issuer, '/auth/authorize');
    await ctx.shot(page, 'apple-consent');
    await page.getByRole('button', { name: 'Continue' }).click();

    await expectErrorPage(page, /Something went wrong on our side/);
    await ctx.shot(page, 'error');

    assert.equal(standIn.tokenRequests.length, 1, `one token request: ${JSON.stringify(standIn.tokenRequests)}`);
    const [refused] = standIn.tokenRequests;
    assert.equal(refused.error, 'invalid_client');
    assert.equal(refused.secret.verified, false);
    assert.match(refused.reason, /signature/);
    // Everything else about the secret was right: only the key is not the registered one.
    assert.equal(refused.secret.header.kid, ctx.app.keyId);
    assert.equal(refused.secret.claims.iss, ctx.app.teamId);
    assert.equal(refused.secret.claims.sub, CLIENT_ID);
    assert.deepEqual(await query(ctx.app.app, 'SELECT id FROM user_profile'), [], 'nobody was signed in');
  });
});

// Apple posts `user_cancelled_authorize` for Cancel (documented in "Incorporating Sign in with
// Apple into other platforms"), not RFC 6749's access_denied: this test found loginwith reading
// it as a failure ("Apple could not sign you in").
test('15d: Cancel at Apple (error=user_cancelled_authorize) is a cancel, not a failure', async () => {
  await scenario(browser, 'sign-in-with-apple-cancel', { start: appleStack() }, async (ctx) => {
    const { standIn, issuer } = ctx.app;
    const page = await ctx.context.newPage();
    const posts = recordPosts(page, ctx.app.url);
    await page.goto(ctx.url('/'));
    await expectSignedOut(page);
    await appleButton(page).click();
    await onStandIn(page, issuer, '/auth/authorize');
    await page.getByRole('button', { name: 'Cancel' }).click();

    await onPath(page, '/error');
    await page.getByRole('heading', { level: 1, name: 'Sign-in did not complete' }).waitFor();
    await ctx.shot(page, 'error-cancelled');
    const { fields } = await expectRelayed(posts, 0, ctx.app);
    assert.deepEqual(Object.keys(fields).sort(), ['error', 'state']);
    assert.equal(fields.error, 'user_cancelled_authorize');
    assert.equal(standIn.tokenRequests.length, 0, 'no token request');
    assert.match(await page.locator('main').innerText(), /You cancelled signing in with Apple\. Nothing was shared\./);
  });
});

test('15e: a cross-site POST to /callback/apple/continue gets no cookies and is refused; the real sign-in goes on', async () => {
  await scenario(browser, 'sign-in-with-apple-forged-post', { start: appleStack() }, async (ctx) => {
    const { standIn, issuer } = ctx.app;
    const page = await ctx.context.newPage();
    await page.goto(ctx.url('/'));
    await appleButton(page).click();
    await onStandIn(page, issuer, '/auth/authorize');
    const { state } = expectAuthorizationRequest(ctx.app, 0);

    // Another site's page (a server of its own on 127.0.0.1, plain http), in another tab of
    // the same browser, posts a code with the victim's own state (the worst case: the state
    // is meant to be secret) to the step that takes the relayed answer.
    const forged = await serveOnce(`<!doctype html><html lang="en"><title>Another site</title>
<form method="post" action="${ctx.url('/callback/apple/continue')}">
<input type="hidden" name="code" value="c0ffee.0.forged"><input type="hidden" name="state" value="${state}">
</form><script>document.forms[0].submit()</script></html>`);
    const attacker = await ctx.context.newPage();
    const posts = recordPosts(attacker, ctx.app.url);
    const refused = attacker.waitForResponse((response) => response.url() === ctx.url('/callback/apple/continue'));
    // The page posts itself while it loads: its own navigation is then interrupted.
    await attacker.goto(forged.url).catch((error) => {
      if (!/interrupted/.test(error.message)) throw error;
    });
    const answer = await refused;
    await forged.stop();
    assert.equal(answer.status(), 400, 'refused');
    await attacker.getByRole('heading', { level: 1, name: 'This link did not work' }).waitFor();
    await ctx.shot(attacker, 'forged-post-refused');
    const headers = await posts[0].headers;
    assert.equal(headers['sec-fetch-site'], 'cross-site');
    assert.deepEqual(cookieNames(headers).filter((name) => name.includes('loginwith')), [], 'no loginwith cookie on a cross-site POST');
    await attacker.close();

    // The victim's own sign-in was not spent by it.
    await ctx.shot(page, 'apple-consent');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expectSignedIn(page);
    await ctx.shot(page, 'signed-in');
    assert.equal(standIn.tokenRequests.length, 1, 'the forged code never reached Apple');
    assert.equal(standIn.tokenRequests[0].status, 200);
  });
});
