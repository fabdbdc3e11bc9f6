// Scenario 13: who may enter (issue 21). loginwith signs people in through a real OpenID
// Provider (the npm oidc-provider, lib/oidc-provider.mjs, as in scenario 10), which issues a
// `groups` claim, with
//
//   [access]                       groups = ["ops", "wiki"]   who may sign in at all
//   [[access.rules]] grafana host  groups = ["ops"]
//   [[access.rules]] wiki host     groups = ["wiki"]
//
// in a configuration file (LOGINWITH_CONFIG: rules are an array of tables, which the
// environment cannot say). Ada is in "ops" only; Grace is in "staff", a group [access] does
// not name. Two protected hosts, grafana.example.localhost and wiki.example.localhost (a
// small page in this test process that shows what it received, X-Auth-Request-Groups among
// it), behind the deploy folder's very files, each replacement asserted (lib/gateway.mjs):
//
// 13a, Debian's nginx (deploy/nginx/forward-auth.conf, once per host): the protected grafana
// URL with two query parameters leads to the sign-in page → Acme SSO → back on that exact URL,
// both parameters kept (nginx sends loginwith's own Location on); grafana gets
// `X-Auth-Request-Groups: ops`; the wiki host answers 403 with loginwith's "may not sign in"
// page naming her, styled from loginwith's origin, and the site behind saw nothing, also when
// the browser sends its own X-Forwarded-* and X-Original-URL naming grafana. Grace finishes the
// issuer's dialog and lands on the "may not sign in" page; the database holds nothing of her.
// 13b, Debian's caddy (deploy/caddy/Caddyfile, once per host): the same two hosts, from a
// browser that is not signed in (loginwith's 302, passed on by Caddy) to Ada allowed on
// grafana and refused on the wiki, with the 403 page.
//
// nginx, caddy, sqlite3, oidc-provider and Chromium must be installed (e2e/run.sh sees to
// them): without one this fails saying what is missing; it never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startApp } from '../lib/app.mjs';
import { launchBrowser, scenario } from '../lib/browser.mjs';
import { startCaddy } from '../lib/caddy.mjs';
import { caddySite, nginxSite } from '../lib/gateway.mjs';
import { startNginxServers } from '../lib/nginx.mjs';
import { startOpenIdProvider } from '../lib/oidc-provider.mjs';
import { query } from '../lib/sqlite.mjs';

const LOGIN_HOST = 'login.example.localhost';
const GRAFANA = 'grafana.example.localhost';
const WIKI = 'wiki.example.localhost';
const CORP = 'Acme SSO';
const CORP_CLIENT_ID = 'loginwith';
const ADA = { name: 'Ada Lovelace', email: 'ada@acme.example', email_verified: true, groups: ['ops'] };
const GRACE = { name: 'Grace Hopper', email: 'grace@acme.example', email_verified: true, groups: ['staff'] };
const ACCOUNTS = { ada: ADA, grace: GRACE };

const ACCESS = `
[access]
groups = ["ops", "wiki"]

[[access.rules]]
host = "${GRAFANA}"
groups = ["ops"]

[[access.rules]]
host = "${WIKI}"
groups = ["wiki"]
`;

const execFileAsync = promisify(execFile);

let browser;
before(async () => {
  browser = await launchBrowser({
    args: [`--host-resolver-rules=MAP ${LOGIN_HOST} 127.0.0.1, MAP ${GRAFANA} 127.0.0.1, MAP ${WIKI} 127.0.0.1`],
  });
});
after(async () => { await browser?.close(); });

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The protected sites (both hosts): a page showing the host, the name and the groups it
 * received (each decoded), failing loudly without X-Auth-Request-User. Every request is kept.
 */
async function startSites() {
  const seen = [];
  const server = http.createServer((request, response) => {
    const headers = Object.fromEntries(
      Object.entries(request.headers).filter(([name]) => name.startsWith('x-auth-request-')),
    );
    seen.push({ method: request.method, host: request.headers.host, url: request.url, headers });
    request.resume();
    if (request.headers['x-auth-request-user'] === undefined) {
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('no X-Auth-Request-User: the gateway let an unauthenticated request through');
      return;
    }
    const decode = (name) => decodeURIComponent(request.headers[name] ?? '');
    const groups = (request.headers['x-auth-request-groups'] ?? '').split(',').filter(Boolean).map(decodeURIComponent);
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(request.headers.host ?? '')}</title></head>
<body><main><h1>Hello, ${escapeHtml(decode('x-auth-request-name'))}</h1>
<p id="host">${escapeHtml(request.headers.host ?? '')}</p>
<p id="groups">Groups: ${escapeHtml(groups.join(' | '))}</p></main></body></html>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    seen,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/**
 * scenario()'s `start`, for `gateway` ('nginx' or 'caddy'): oidc-provider, the sites,
 * loginwith on login.example.localhost (which discovers the issuer at start-up), then the
 * gateway in front of both hosts on one port. A port taken meanwhile is retried with another.
 */
function startStack(gateway) {
  return async (config, { logFile }) => {
    let lastError;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        return await startStackOnce(gateway, config, { logFile });
      } catch (error) {
        lastError = error;
        if (!error.portTaken) throw error;
      }
    }
    throw lastError;
  };
}

async function startStackOnce(gateway, config, { logFile }) {
  const artifacts = path.dirname(logFile);
  const stopping = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  try {
    const appPort = await freePort();
    const loginUrl = `http://${LOGIN_HOST}:${appPort}`;
    const corpSecret = randomBytes(32).toString('base64url');
    const op = await startOpenIdProvider({
      client: { clientId: CORP_CLIENT_ID, clientSecret: corpSecret, redirectUri: `${loginUrl}/callback/corp` },
      accounts: ACCOUNTS,
    });
    stopping.push(op.stop);
    stopping.push(async () => {
      await mkdir(artifacts, { recursive: true });
      await writeFile(path.join(artifacts, 'openid-provider.log'), op.log());
    });
    const sites = await startSites();
    stopping.push(sites.stop);
    const app = await startApp({
      'server.public_url': loginUrl,
      ...config,
    }, {
      logFile,
      port: appPort,
      readyHost: `${LOGIN_HOST}:${appPort}`,
      toml: `[session]
cookie_domain = "example.localhost"

[gateway]
allowed_hosts = ["${GRAFANA}", "${WIKI}"]

[server]
# The gateway is the peer: loginwith reads the protected URL from it alone.
trusted_proxies = ["127.0.0.1"]
${ACCESS}`,
      env: {
        LOGINWITH_PROVIDERS__CORP__KIND: 'oidc',
        LOGINWITH_PROVIDERS__CORP__DISPLAY_NAME: CORP,
        LOGINWITH_PROVIDERS__CORP__ISSUER: op.issuer,
        LOGINWITH_PROVIDERS__CORP__CLIENT_ID: CORP_CLIENT_ID,
        LOGINWITH_PROVIDERS__CORP__CLIENT_SECRET: corpSecret,
      },
    });
    stopping.push(app.stop);

    const dir = await mkdtemp(path.join(os.tmpdir(), `loginwith-who-may-enter-${gateway}-`));
    stopping.push(() => rm(dir, { recursive: true, force: true }));
    const gatewayPort = await freePort();
    const site = gateway === 'nginx' ? nginxSite : caddySite;
    const blocks = [];
    for (const host of [GRAFANA, WIKI]) {
      blocks.push(await site({ host, port: gatewayPort, appPort, sitePort: sites.port }));
    }
    let front;
    if (gateway === 'nginx') {
      front = await startNginxServers({ dir, servers: blocks.join('\n'), ports: [gatewayPort] });
      stopping.push(async () => {
        await mkdir(artifacts, { recursive: true });
        for (const name of ['nginx.conf', 'error.log', 'access.log']) {
          await copyFile(path.join(dir, name), path.join(artifacts, `nginx-${name}`)).catch(() => {});
        }
      });
    } else {
      front = await startCaddy({ dir, sites: blocks.join('\n'), ports: [gatewayPort] });
      stopping.push(async () => {
        await mkdir(artifacts, { recursive: true });
        for (const name of ['Caddyfile', 'caddy.log']) {
          await copyFile(path.join(dir, name), path.join(artifacts, `caddy-${name}`)).catch(() => {});
        }
      });
    }
    stopping.push(front.stop);
    return {
      url: loginUrl,
      app,
      op,
      sites,
      /** nginx or caddy (lib/nginx.mjs's or lib/caddy.mjs's handle). */
      front,
      /** A URL of `host` through the gateway. */
      at: (host, rest = '/') => `http://${host}:${gatewayPort}${rest}`,
      log: () => `${app.log()}\n--- oidc-provider ---\n${op.log()}`,
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
  assert.equal(new URL(page.url()).searchParams.get('return_to'), protectedUrl, `the sign-in page's return_to: ${page.url()}`);
  await page.getByRole('link', { name: `Continue with ${CORP}` }).waitFor();
}

/** Continue with Acme SSO → the issuer's sign-in page as `login` → its consent page → back. */
async function signInAtIssuer(ctx, page, login, label) {
  const { op } = ctx.app;
  await page.getByRole('link', { name: `Continue with ${CORP}` }).click();
  await page.waitForURL((url) => url.origin === op.issuer && url.pathname.startsWith('/interaction/'));
  await page.getByRole('heading', { level: 1, name: 'Sign-in' }).waitFor();
  await page.getByPlaceholder('Enter any login').fill(login);
  await page.getByPlaceholder('and password').fill('any password will do');
  await ctx.shot(page, `${label}-issuer-sign-in`);
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Authorize' }).waitFor();
  await ctx.shot(page, `${label}-issuer-consent`);
  await page.getByRole('button', { name: 'Continue' }).click();
}

/** The protected page of `host`, showing who the gateway said it is. */
async function expectProtectedPage(page, url, host) {
  await page.waitForURL((current) => current.href === url);
  assert.equal(page.url(), url, 'back on the exact URL, every query parameter kept');
  await page.getByRole('heading', { level: 1, name: `Hello, ${ADA.name}` }).waitFor();
  // The Host the site got: nginx's `proxy_set_header Host $host` drops the port, Caddy keeps it.
  assert.equal((await page.locator('#host').innerText()).split(':')[0], host);
  assert.equal(await page.locator('#groups').innerText(), 'Groups: ops');
}

/**
 * `url` answers 403 with loginwith's "may not sign in" page for Ada, styled by loginwith's
 * stylesheet from loginwith's origin, with its two links; the wiki's site never saw a request.
 */
async function expectForbidden(ctx, page, url, { headers = {}, hostNamed = true } = {}) {
  const stylesheets = [];
  const onResponse = (response) => {
    if (response.request().resourceType() === 'stylesheet') stylesheets.push(`${response.status()} ${response.url()}`);
  };
  page.on('response', onResponse);
  await page.setExtraHTTPHeaders(headers);
  const response = await page.goto(url);
  await page.setExtraHTTPHeaders({});
  assert.equal(response.status(), 403, `${url} answers 403`);
  assert.match(response.headers()['content-type'] ?? '', /^text\/html/);
  assert.equal(page.url(), url, 'the 403 page is shown at the protected URL');
  await page.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
  const lead = await page.locator('.lead').innerText();
  // The host is named when the gateway's word for the URL is believed; when the browser's own
  // X-Original-URL contradicts Caddy's X-Forwarded-*, neither is, and the page names the site.
  const expected = hostNamed
    ? `${ADA.email} (${CORP}) may not enter ${new URL(url).hostname}.`
    : `${ADA.email} (${CORP}) may not sign in to loginwith.`;
  assert.equal(lead, expected);
  const another = page.getByRole('link', { name: 'Sign in with another account' });
  const logOut = page.getByRole('link', { name: 'Log out' });
  assert.equal(new URL(await logOut.getAttribute('href')).origin, ctx.app.url, 'Log out leads to loginwith');
  const anotherHref = new URL(await another.getAttribute('href'));
  assert.equal(anotherHref.origin, ctx.app.url, 'another account: loginwith\'s sign-in page');
  // Back here, when the URL was believed (see above).
  assert.equal(anotherHref.searchParams.get('return_to'), hostNamed ? url : null, 'which comes back here');
  // Every link and picture of the page is loginwith's: a relative one would name the
  // protected host, where it would meet this 403 again.
  const references = await page.evaluate(() => [...document.querySelectorAll('a[href], img[src], link[href], script[src]')]
    .map((element) => element.href || element.src));
  for (const reference of references) {
    assert.equal(new URL(reference).origin, ctx.app.url, `${reference} is on loginwith's origin (every reference: ${references.join(', ')})`);
  }
  // Styled: loginwith's stylesheet came from loginwith's origin (the CSP names it) and applies.
  assert.ok(stylesheets.length > 0 && stylesheets.every((s) => s.startsWith(`200 ${ctx.app.url}/`)), `stylesheets: ${stylesheets.join(', ')}`);
  const display = await page.evaluate(() => getComputedStyle(document.body).display);
  assert.equal(display, 'flex', 'app.css applies (it makes body a flex box)');
  page.off('response', onResponse);
  assertWikiUnreached(ctx);
}

/** Posts a form to `url` from `page`, as a person would; resolves to the answer. */
async function postForm(page, url) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
    page.evaluate((action) => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = action;
      const field = document.createElement('input');
      field.name = 'note';
      field.value = 'hello';
      form.append(field);
      document.body.append(form);
      form.submit();
    }, url),
  ]);
  await page.waitForURL(url);
  return response;
}

/**
 * A form posted to grafana reaches it (the check itself is a GET, whatever the method); one
 * posted to the wiki gets the 403 page (asked for with GET and no body) and reaches nothing.
 */
async function expectPostsChecked(ctx, page, grafana, wiki) {
  const { sites } = ctx.app;
  const before = sites.seen.length;
  const allowed = await postForm(page, grafana);
  assert.equal(allowed.status(), 200, `POST ${grafana}`);
  // The browser's own requests (its favicon) may come in between: the post is looked for.
  const posts = sites.seen.slice(before).filter((r) => r.method === 'POST').map((r) => r.url);
  assert.deepEqual(posts, [new URL(grafana).pathname + new URL(grafana).search]);
  await page.getByRole('heading', { level: 1, name: `Hello, ${ADA.name}` }).waitFor();
  const refused = await postForm(page, wiki);
  assert.equal(refused.status(), 403, `POST ${wiki}`);
  await page.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
  assertWikiUnreached(ctx);
}

/** No request ever reached the site behind the wiki host (nginx's Host has no port, Caddy's has). */
function assertWikiUnreached(ctx) {
  const reached = ctx.app.sites.seen.filter((r) => (r.host ?? '').split(':')[0] === WIKI);
  assert.deepEqual(reached, [], 'nothing reached the wiki');
}

/**
 * Ada, not signed in, opens `grafana` (the page claiming groups of its own, set by the caller):
 * the sign-in page with the whole URL as return_to, the issuer, and back on the exact URL,
 * where the site got her identity and loginwith's groups, not the browser's.
 */
async function signInThroughGrafana(ctx, page, grafana, { shotSignIn = false } = {}) {
  const { sites } = ctx.app;
  await page.goto(grafana);
  await expectSignInFor(page, ctx.app.url, grafana);
  assert.equal(sites.seen.length, 0, 'nothing reached the site');
  if (shotSignIn) await ctx.shot(page, 'ada-sign-in');
  await signInAtIssuer(ctx, page, 'ada', 'ada');
  await expectProtectedPage(page, grafana, GRAFANA);
  await ctx.shot(page, 'ada-grafana');
  const request = sites.seen.find((r) => r.url === '/d/overview?a=1&b=2');
  assert.ok(request, `grafana's page reached the site: ${JSON.stringify(sites.seen)}`);
  assert.equal(request.headers['x-auth-request-groups'], 'ops', 'her groups, not the browser\'s');
  assert.equal(request.headers['x-auth-request-email'], ADA.email);
  assert.equal(request.headers['x-auth-request-email-verified'], 'true');
  assert.equal(request.headers['x-auth-request-provider'], 'corp');
  await page.setExtraHTTPHeaders({});
}

test('13a: nginx, two hosts and two rules: Ada in on grafana with her groups, 403 on the wiki; Grace refused at sign-in, nothing kept', async () => {
  await scenario(browser, 'who-may-enter-nginx', { start: startStack('nginx') }, async (ctx) => {
    const { at, sites } = ctx.app;
    const grafana = at(GRAFANA, '/d/overview?a=1&b=2');
    const page = await ctx.context.newPage();
    // A browser claiming groups of its own: the gateway must replace them with loginwith's.
    await page.setExtraHTTPHeaders({ 'X-Auth-Request-Groups': 'wiki' });

    // --- Ada, not signed in: grafana → the sign-in page, with the whole URL as return_to.
    await signInThroughGrafana(ctx, page, grafana, { shotSignIn: true });

    // --- The wiki: signed in, but its rule wants "wiki": the 403 page.
    await expectForbidden(ctx, page, at(WIKI, '/start?x=1&y=2'));
    await ctx.shot(page, 'ada-wiki-403');
    // "Sign in with another account" leads to loginwith's home page, which says why and offers
    // to log out, rather than sending her straight back to the same refusal (a circle).
    await page.getByRole('link', { name: 'Sign in with another account' }).click();
    await page.waitForURL((u) => u.origin === ctx.app.url);
    await page.getByText(`may not enter ${new URL(at(WIKI, '/')).hostname}.`).waitFor();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
    await ctx.shot(page, 'ada-home-refused-on-wiki');
    // The browser naming grafana in every header loginwith reads a URL from changes nothing:
    // nginx clears the X-Forwarded-* trio and sets X-Original-URL itself.
    await expectForbidden(ctx, page, at(WIKI, '/'), {
      headers: {
        'X-Forwarded-Proto': 'http',
        'X-Forwarded-Host': new URL(grafana).host,
        'X-Forwarded-Uri': '/',
        'X-Original-URL': grafana,
      },
    });
    // Grafana still lets her in, forms included.
    await page.goto(grafana);
    await expectProtectedPage(page, grafana, GRAFANA);
    await expectPostsChecked(ctx, page, grafana, at(WIKI, '/start?x=1&y=2'));

    // --- Grace, in no group [access] names: she finishes the issuer's dialog, then the
    // "may not sign in" page, and nothing of her is kept.
    const graceContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const grace = await graceContext.newPage();
      await grace.goto(grafana);
      await expectSignInFor(grace, ctx.app.url, grafana);
      await signInAtIssuer(ctx, grace, 'grace', 'grace');
      await grace.getByRole('heading', { level: 1, name: 'Not allowed' }).waitFor();
      assert.equal(new URL(grace.url()).origin, ctx.app.url, 'refused on loginwith\'s own page');
      assert.equal(await grace.locator('.lead').innerText(), `${GRACE.email} (${CORP}) may not sign in to loginwith.`);
      const again = new URL(await grace.getByRole('link', { name: 'Sign in with another account' }).getAttribute('href'), grace.url());
      assert.equal(again.searchParams.get('return_to'), grafana, 'another account comes back to grafana');
      await ctx.shot(grace, 'grace-refused');
      // Not signed in: grafana still sends her to the sign-in page.
      await grace.goto(grafana);
      await expectSignInFor(grace, ctx.app.url, grafana);
    } finally {
      await graceContext.close();
    }
    assert.equal(sites.seen.filter((r) => r.headers['x-auth-request-email'] === GRACE.email).length, 0, 'Grace reached no site');

    // The database: Ada's profile and identity, nothing of Grace.
    const profiles = await query(ctx.app.app, 'SELECT id, email FROM user_profile');
    const identities = await query(ctx.app.app, 'SELECT user_profile_id, provider, provider_user_id FROM user_identity');
    assert.deepEqual(profiles.map((p) => p.email), [ADA.email], `user_profile: ${JSON.stringify(profiles)}`);
    assert.deepEqual(identities.map((i) => `${i.provider}/${i.provider_user_id}`), ['corp/ada'], `user_identity: ${JSON.stringify(identities)}`);
    assert.deepEqual(await query(ctx.app.app, `SELECT id FROM user_profile WHERE email = '${GRACE.email}'`), []);
    assert.deepEqual(await query(ctx.app.app, "SELECT id FROM user_identity WHERE provider_user_id = 'grace'"), []);
    // Nor anywhere else: her address, her subject and her group are in no row of any table.
    const dump = (await execFileAsync('sqlite3', ['-readonly', path.join(ctx.app.app.dir, 'e2e.db'), '.dump'])).stdout;
    assert.match(dump, /ada@acme\.example/, 'the dump holds what was kept');
    for (const trace of ['grace', 'Grace', 'staff']) {
      assert.ok(!dump.includes(trace), `${trace} in the database: ${dump.split('\n').filter((line) => line.includes(trace)).join('\n')}`);
    }

    // nginx sent loginwith's Location on as a 302, and its 403 page as a 403.
    const access = await ctx.app.front.accessLog();
    assert.match(access, /"GET \/d\/overview\?a=1&b=2 HTTP\/1\.1" 302/);
    assert.match(access, /"GET \/d\/overview\?a=1&b=2 HTTP\/1\.1" 200/);
    assert.match(access, /"GET \/start\?x=1&y=2 HTTP\/1\.1" 403/);
  });
});

test('13b: caddy, two hosts and two rules: not signed in → sign-in page → Ada in on grafana, 403 on the wiki', async () => {
  await scenario(browser, 'who-may-enter-caddy', { start: startStack('caddy') }, async (ctx) => {
    const { at } = ctx.app;
    const grafana = at(GRAFANA, '/d/overview?a=1&b=2');
    const wiki = at(WIKI, '/start?x=1&y=2');
    const page = await ctx.context.newPage();

    // Not signed in, the wiki: Caddy passes loginwith's 302 on.
    await page.goto(wiki);
    await expectSignInFor(page, ctx.app.url, wiki);
    await ctx.shot(page, 'wiki-sign-in');

    // Grafana: the sign-in page, Ada, back on the exact URL with her groups.
    await page.setExtraHTTPHeaders({ 'X-Auth-Request-Groups': 'wiki' });
    await signInThroughGrafana(ctx, page, grafana);

    // The wiki: the 403 page, also when the browser names grafana in its own headers (Caddy
    // sets X-Forwarded-Proto, -Host and -Uri itself; the browser's X-Original-URL then
    // contradicts them, so loginwith believes neither and every rule must pass).
    await expectForbidden(ctx, page, wiki);
    await ctx.shot(page, 'ada-wiki-403');
    await expectForbidden(ctx, page, at(WIKI, '/'), {
      hostNamed: false,
      headers: {
        'X-Forwarded-Proto': 'http',
        'X-Forwarded-Host': new URL(grafana).host,
        'X-Forwarded-Uri': '/d/overview',
        'X-Original-URL': grafana,
      },
    });

    // The page's own query never reaches the check as loginwith's narrowing form (the
    // Caddyfile's `uri /auth/check?` clears it): a page whose URL happens to say
    // allowed_groups=nobody still opens.
    const narrowed = at(GRAFANA, '/d/overview?allowed_groups=nobody');
    await page.goto(narrowed);
    await expectProtectedPage(page, narrowed, GRAFANA);
    await page.goto(grafana);
    await expectPostsChecked(ctx, page, grafana, wiki);

    // A browser that is not signed in is sent to the sign-in page from either host.
    const stranger = await browser.newContext();
    try {
      const other = await stranger.newPage();
      await other.goto(grafana);
      await expectSignInFor(other, ctx.app.url, grafana);
    } finally {
      await stranger.close();
    }
  });
});
