// A real OpenID Provider for the browser suite: the certified `oidc-provider` package (npm,
// pinned in package.json), in this test process, on a loopback port of its own, with one static
// client registered for loginwith and its built-in development login and consent pages.
//
// oidc-provider 9 asks for Node.js 22 LTS at run time (every 9.x prints "Unsupported runtime"
// on Node 20, and none declares `engines`); it runs on Node 20 all the same. Its warnings go
// to this provider's log (kept in the scenario's artifacts), not to the test output.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';

/** Lines oidc-provider prints through console.warn/info while one of these runs. */
const notices = [];
let patched = 0;
const original = { warn: console.warn, info: console.info };

function captureNotices() {
  if (patched++ > 0) return;
  for (const level of ['warn', 'info']) {
    console[level] = (...args) => {
      if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider ')) {
        notices.push(args.join(' '));
      } else {
        original[level](...args);
      }
    };
  }
}

function releaseNotices() {
  if (--patched > 0) return;
  console.warn = original.warn;
  console.info = original.info;
}

async function loadProvider() {
  try {
    return (await import('oidc-provider')).default;
  } catch (error) {
    throw new Error(
      'the npm package oidc-provider is missing: run `npm ci` in e2e/ (e2e/run.sh does). ' +
        `The OpenID Connect scenario needs it and does not skip. (${error.message})`,
      { cause: error },
    );
  }
}

/**
 * Starts oidc-provider on 127.0.0.1 at a port the OS picks; its issuer is
 * `http://127.0.0.1:PORT` (no trailing slash).
 *
 * - `client`: `{ clientId, clientSecret, redirectUri }`, registered as a confidential web
 *   client (client_secret_basic) for the authorization-code flow only, PKCE required. Two
 *   optional members turn logout on for it:
 *   - `backchannelLogoutUri`: Back-Channel Logout 1.0 (`features.backchannelLogout`, off by
 *     default in oidc-provider 9), registered as the client's `backchannel_logout_uri` with
 *     `backchannel_logout_session_required: true`, so that its ID tokens carry `sid` and so
 *     does every logout token. When the person confirms the issuer's logout prompt
 *     (`/session/end`), the issuer posts a logout token there from this process before it
 *     answers the browser. oidc-provider's outgoing requests refuse special-use addresses
 *     (loopback among them: lib/helpers/fetch_request.js destroys such sockets, whatever the
 *     client's `application_type`, which governs redirect URIs only), so this issuer's
 *     `fetch` drops that guard; every such request is kept in `backchannelLogouts`.
 *   - `postLogoutRedirectUris`: RP-Initiated Logout 1.0 (`features.rpInitiatedLogout`, on by
 *     default in oidc-provider 9, and named here): the client's `post_logout_redirect_uris`,
 *     where `/session/end` may send the browser back (http is allowed for a `web` client that
 *     does not use the implicit flow, the default `application_type`).
 * - `accounts`: login → claims, e.g. `{ ada: { name, email, email_verified } }`. The login
 *   typed on the development sign-in page (any password) is the account id and the `sub`;
 *   a login not in the map is no account. An account may carry `groups` (a list of strings),
 *   issued as the `groups` claim with the `openid` scope (at userinfo).
 * - `latencyMs`: how long its token and userinfo endpoints wait before answering (so that a
 *   browser really sees loginwith's preloader).
 *
 * Returns `{ issuer, port, requests, backchannelLogouts, signingKey, log(), stop() }`;
 * `requests` lists every request it answered, in order, as `{ method, path, query, status,
 * userAgent }`; `backchannelLogouts` every back-channel logout it sent, in order, as
 * `{ url, logoutToken, status, body }` (`status` 0 and `body` the error's message when no
 * answer came); `signingKey` is the public JWK it signs with (its `kid` among it).
 */
export async function startOpenIdProvider({ client, accounts, latencyMs = 0 }) {
  captureNotices();
  let server;
  try {
    const Provider = await loadProvider();
    const lines = [];
    const log = (line) => lines.push(`${new Date().toISOString()} ${line}`);
    const requests = [];

    // Bound first, so the issuer can name the port: nothing else can take it meanwhile.
    server = http.createServer();
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address();
    const issuer = `http://127.0.0.1:${port}`;

    // A fresh signing key per run, as a real issuer's would be its own.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

    const backchannelLogouts = [];
    const backchannel = client.backchannelLogoutUri !== undefined;
    const logoutMetadata = {
      ...(backchannel ? {
        backchannel_logout_uri: client.backchannelLogoutUri,
        backchannel_logout_session_required: true,
      } : {}),
      ...(client.postLogoutRedirectUris ? { post_logout_redirect_uris: client.postLogoutRedirectUris } : {}),
    };

    const provider = new Provider(issuer, {
      clients: [{
        client_id: client.clientId,
        client_secret: client.clientSecret,
        redirect_uris: [client.redirectUri],
        response_types: ['code'],
        grant_types: ['authorization_code'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...logoutMetadata,
      }],
      pkce: { required: () => true },
      async findAccount(_ctx, id) {
        const account = Object.hasOwn(accounts, id) ? accounts[id] : undefined;
        if (!account) return undefined;
        return {
          accountId: id,
          async claims() {
            return { sub: id, ...account };
          },
        };
      },
      claims: {
        // `groups` with the `openid` scope, which every sign-in asks for: in userinfo (the ID
        // token of the code flow carries only `sub` and the protocol's claims), where loginwith
        // reads it, as it reads name and address, when the ID token lacks them. An account
        // without `groups` sends no such claim.
        openid: ['sub', 'groups'],
        email: ['email', 'email_verified'],
        profile: ['name'],
      },
      jwks: { keys: [signingKey] },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      features: {
        devInteractions: { enabled: true },
        rpInitiatedLogout: { enabled: true },
        backchannelLogout: { enabled: backchannel },
      },
      // Only with back-channel logout: its posts go to loginwith on loopback, which the
      // default guard against special-use addresses refuses (see above). Each is recorded.
      ...(backchannel ? {
        async fetch(url, { dispatcher: _guard, ...options }) {
          const entry = { url: String(url), logoutToken: undefined, status: 0, body: '' };
          if (options.body instanceof URLSearchParams) entry.logoutToken = options.body.get('logout_token') ?? undefined;
          backchannelLogouts.push(entry);
          try {
            const response = await globalThis.fetch(url, options);
            entry.body = await response.clone().text();
            entry.status = response.status;
            log(`back-channel logout to ${entry.url}: ${entry.status} ${entry.body}`);
            return response;
          } catch (error) {
            entry.body = error.message;
            log(`back-channel logout to ${entry.url} failed: ${error.message}`);
            throw error;
          }
        },
      } : {}),
    });

    // A request log, for the artifacts and for the scenario's assertions.
    provider.use(async (ctx, next) => {
      try {
        await next();
      } finally {
        const entry = {
          method: ctx.method,
          path: ctx.path,
          query: ctx.querystring,
          status: ctx.status,
          userAgent: ctx.get('user-agent'),
        };
        requests.push(entry);
        log(`${entry.method} ${entry.path}${entry.query ? `?${entry.query}` : ''} ${entry.status} (${entry.userAgent || 'no user agent'})`);
      }
    });
    if (latencyMs > 0) {
      provider.use(async (ctx, next) => {
        if (ctx.path === '/token' || ctx.path === '/me') {
          await new Promise((resolve) => setTimeout(resolve, latencyMs));
        }
        await next();
      });
    }
    for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'discovery.error', 'jwks.error', 'end_session.error', 'backchannel.error']) {
      provider.on(event, (...args) => {
        const error = args.find((arg) => arg instanceof Error);
        log(`${event}: ${error ? `${error.name}: ${error.message}${error.error_description ? ` (${error.error_description})` : ''}` : ''}`);
      });
    }
    provider.on('grant.success', () => log('grant.success: tokens issued'));
    provider.on('end_session.success', () => log('end_session.success: the session at the issuer ended'));
    provider.on('backchannel.success', (_ctx, { clientId }, accountId, sid) => {
      log(`backchannel.success: ${clientId} told that ${accountId} (sid ${sid}) signed out`);
    });

    server.on('request', provider.callback());
    log(`listening as issuer ${issuer}`);

    let stopped = false;
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicKey } = signingKey;
    return {
      issuer,
      port,
      requests,
      backchannelLogouts,
      signingKey: publicKey,
      log: () => [...notices, ...lines].join('\n'),
      async stop() {
        if (stopped) return;
        stopped = true;
        server.closeAllConnections();
        await new Promise((resolve) => server.close(() => resolve()));
        releaseNotices();
      },
    };
  } catch (error) {
    server?.close();
    releaseNotices();
    throw error;
  }
}
