// An imitation of Sign in with Apple for the browser suite, in the test process on a loopback
// port of its own, written from Apple's documentation (docs/providers/apple.md lists it), not
// from loginwith's code: what Apple checks is checked here, and what Apple sends is sent.
//
// - Discovery (`/.well-known/openid-configuration`), the shape of Apple's own document with
//   this issuer's addresses: `response_modes_supported` with `form_post`,
//   `token_endpoint_auth_methods_supported: ["client_secret_post"]`, RS256 ID tokens, no
//   userinfo endpoint.
// - `/auth/keys`: the JWKS of a fresh RS256 key (node:crypto).
// - `/auth/authorize`: the registered Services ID, the exact Return URL, `response_type=code`,
//   `response_mode=form_post` whenever `name` or `email` is asked for ("response_mode must be
//   form_post when name or email scope is requested"), scopes among `openid name email`,
//   PKCE with S256. An error is a page at Apple, never a redirect (as Apple shows a bad
//   client or Return URL). Then the consent page of the one Apple ID signed in at this
//   "Apple": the first time for a Services ID its name (editable, as Apple lets people edit
//   it) and the choice between sharing the address and hiding it behind a private relay
//   address; later only "continue using … with your Apple ID?". Cancel posts
//   `error=user_cancelled_authorize`, as Apple documents.
// - The answer is a page that posts itself (`application/x-www-form-urlencoded`, `method=post`)
//   to the Return URL: `code` and `state`, and on the first consent only `user`, the JSON
//   `{"name":{"firstName","lastName"},"email"}`. Without JavaScript it shows a Continue button.
// - `/auth/token`: `client_secret_post` only (a Basic header is refused); the client secret is
//   an ES256 JWT verified with node:crypto against the public half of the team's key the test
//   registered: header `alg` ES256 and `kid` the key id; claims `iss` the team id, `sub` the
//   Services ID, `aud` `https://appleid.apple.com`, `iat` not in the future, `exp` in the
//   future and at most 15,777,000 s (six months) after `iat`. The code is single use, five
//   minutes, for that client and that exact `redirect_uri`, and the PKCE verifier must hash to
//   the challenge. Errors are Apple's: 400 `{"error":"invalid_client"}` or `invalid_grant`.
//   The answer: `access_token`, `token_type: "Bearer"`, `expires_in`, `refresh_token`, and an
//   RS256 `id_token` with `iss`, `aud`, `exp`, `iat`, `sub`, `at_hash`, `auth_time`,
//   `nonce_supported`, `nonce` (the one sent), `email`, `email_verified: "true"` and
//   `is_private_email` as STRINGS (as Apple writes them), and no name.
//
// It speaks plain http on loopback: TLS is ended in front of it (nginx, lib/nginx.mjs), and
// `issuer` is the https address people and loginwith use. Every authorization request, every
// answer it posted and every token request is recorded for the scenario's assertions, without
// secrets (no code, no verifier, no client secret: the secret's header and claims, and a hash
// of it to tell secrets apart).
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, verify } from 'node:crypto';
import http from 'node:http';

/** `aud` of every client secret, whatever the issuer's address. */
export const APPLE_AUDIENCE = 'https://appleid.apple.com';
/** Apple's longest client secret: six months. */
const MAX_SECRET_LIFETIME_SECS = 15_777_000;
/** Apple's codes are good for five minutes, once. */
const CODE_LIFETIME_MS = 5 * 60 * 1000;
/** How far a client secret's `iat` may be ahead of this clock. */
const CLOCK_SKEW_SECS = 60;
const SCOPES = new Set(['openid', 'name', 'email']);

const b64url = (data) => Buffer.from(data).toString('base64url');
const json64 = (value) => b64url(JSON.stringify(value));
const now = () => Math.floor(Date.now() / 1000);

/** Text for HTML content and attribute values. */
export function escapeHtml(text) {
  return String(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** An Apple `sub`: six digits, 32 hex digits, four digits, dot-separated (the shape Apple's have). */
export function appleSubject() {
  const digits = (n) => Array.from(randomBytes(n), (b) => String(b % 10)).join('');
  return `${digits(6)}.${randomBytes(16).toString('hex')}.${digits(4)}`;
}

/** A Team ID or Key ID: ten uppercase letters or digits. */
export function appleId() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from(randomBytes(10), (b) => alphabet[b % alphabet.length]).join('');
}

/**
 * A team's Sign in with Apple key, as Apple makes one: EC P-256. `pem` is the private half as
 * the `.p8` file Apple lets the team download (PKCS #8 PEM), for loginwith; `publicKey` (a
 * KeyObject) is what Apple keeps to verify client secrets.
 */
export function makeTeamKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }), publicKey };
}

/** A compact JWS's header and claims, without checking anything; `null` if it is not one. */
export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return null;
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
      signingInput: `${parts[0]}.${parts[1]}`,
      signature: Buffer.from(parts[2], 'base64url'),
    };
  } catch {
    return null;
  }
}

/**
 * Checks a client secret as Apple does for `client` ({ clientId, teamId, keyId, publicKey }).
 * Returns `{ ok: true, header, claims }` or `{ ok: false, reason, header?, claims? }`.
 */
export function checkClientSecret(secret, client, clientIdSent) {
  const jwt = decodeJwt(secret);
  if (!jwt || typeof jwt.header !== 'object' || typeof jwt.claims !== 'object' || !jwt.header || !jwt.claims) {
    return { ok: false, reason: 'not a JWT' };
  }
  const { header, claims } = jwt;
  const refuse = (reason) => ({ ok: false, reason, header, claims });
  if (header.alg !== 'ES256') return refuse(`alg ${JSON.stringify(header.alg)} is not ES256`);
  if (header.kid !== client.keyId) return refuse(`kid ${JSON.stringify(header.kid)} is not the key ${client.keyId}`);
  // ES256 in a JWS is r || s, 32 bytes each (RFC 7518 section 3.4), not DER.
  const good = jwt.signature.length === 64 && verify(
    'sha256',
    Buffer.from(jwt.signingInput),
    { key: client.publicKey, dsaEncoding: 'ieee-p1363' },
    jwt.signature,
  );
  if (!good) return refuse('the signature is not the registered key\'s');
  if (claims.iss !== client.teamId) return refuse(`iss ${JSON.stringify(claims.iss)} is not the team ${client.teamId}`);
  if (claims.sub !== client.clientId || claims.sub !== clientIdSent) {
    return refuse(`sub ${JSON.stringify(claims.sub)} is not the client_id ${JSON.stringify(clientIdSent)}`);
  }
  if (claims.aud !== APPLE_AUDIENCE) return refuse(`aud ${JSON.stringify(claims.aud)} is not ${APPLE_AUDIENCE}`);
  const t = now();
  if (!Number.isInteger(claims.iat) || claims.iat > t + CLOCK_SKEW_SECS) return refuse(`iat ${claims.iat} is missing or in the future`);
  if (!Number.isInteger(claims.exp) || claims.exp <= t) return refuse(`exp ${claims.exp} is missing or past`);
  if (claims.exp - claims.iat > MAX_SECRET_LIFETIME_SECS) return refuse(`exp is more than six months after iat`);
  return { ok: true, header, claims };
}

const PAGE_STYLE = `
  body { font-family: system-ui, sans-serif; background: #f5f5f7; color: #1d1d1f; margin: 0;
         display: flex; justify-content: center; }
  main { background: #fff; margin: 3rem 1rem; padding: 2rem; border-radius: 18px; max-width: 26rem;
         width: 100%; box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
  .mark { font-size: 0.9rem; color: #6e6e73; margin: 0 0 1rem; }
  h1 { font-size: 1.5rem; margin: 0 0 0.75rem; }
  label, legend { display: block; font-weight: 600; margin-top: 1rem; padding: 0; }
  input[type=text] { width: 100%; font: inherit; padding: 0.6rem; border: 1px solid #86868b; border-radius: 8px; box-sizing: border-box; }
  fieldset { border: 0; padding: 0; margin: 0; }
  fieldset label { font-weight: 400; }
  .buttons { display: flex; gap: 0.75rem; margin-top: 1.5rem; }
  button { font: inherit; padding: 0.7rem 1.2rem; border-radius: 8px; border: 1px solid #000; cursor: pointer; }
  .primary { background: #000; color: #fff; flex: 1; }
  .secondary { background: #fff; color: #000; }
  .error { color: #b00020; }
`;

function page(title, body, { onload } = {}) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body${onload ? ` onload="${escapeHtml(onload)}"` : ''}>
<main>
<p class="mark">Apple ID (e2e stand-in)</p>
${body}
</main>
</body>
</html>
`;
}

/**
 * Starts the stand-in on 127.0.0.1 at a port the OS picks.
 *
 * - `issuer`: its public address, e.g. `https://127.0.0.1:PORT` (no trailing slash), where TLS
 *   ends in front of it.
 * - `client`: the Services ID registered at this "Apple": `{ clientId, teamId, keyId,
 *   publicKey, redirectUri }` (`publicKey` a KeyObject or PEM: the public half of the team's
 *   key; `redirectUri` the one Return URL).
 * - `account`: the Apple ID signed in here: `{ sub, firstName, lastName, email, relayEmail }`.
 * - `latencyMs`: how long the token endpoint waits before answering.
 *
 * Returns `{ upstream: '127.0.0.1:PORT', issuer, authorizations, formPosts, tokenRequests,
 * requests, log(), stop() }`.
 */
export async function startAppleStandIn({ issuer, client, account, latencyMs = 0 }) {
  const lines = [];
  const log = (line) => lines.push(`${new Date().toISOString()} ${line}`);
  /** Every request answered: `{ method, path, status, userAgent }` (no query: it holds state and nonce). */
  const requests = [];
  /** Every authorization request: its parameters (state and nonce included) and what came of it. */
  const authorizations = [];
  /** Every answer posted to the client: `{ action, fields (names), user, error }`. */
  const formPosts = [];
  /** Every token request, without secrets. */
  const tokenRequests = [];

  const { privateKey: signingKey, publicKey: verifyingKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  const jwk = { ...verifyingKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
  const registered = { ...client };

  /** Pending consents, by the id in the consent form. */
  const transactions = new Map();
  /** Codes issued, until used or expired. */
  const codes = new Map();
  /** `clientId` → what the person chose the first time: { firstName, lastName, hide }. */
  const consented = new Map();

  const discovery = {
    issuer,
    authorization_endpoint: `${issuer}/auth/authorize`,
    token_endpoint: `${issuer}/auth/token`,
    revocation_endpoint: `${issuer}/auth/revoke`,
    jwks_uri: `${issuer}/auth/keys`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'name'],
    token_endpoint_auth_methods_supported: ['client_secret_post'],
    claims_supported: ['aud', 'email', 'email_verified', 'exp', 'iat', 'is_private_email', 'iss', 'nonce', 'nonce_supported', 'real_user_status', 'sub', 'transfer_sub'],
  };

  const send = (response, status, type, body, headers = {}) => {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
    response.end(body);
  };
  const sendJson = (response, status, value) => send(response, status, 'application/json;charset=UTF-8', JSON.stringify(value), { pragma: 'no-cache' });
  const errorPage = (response, status, error, description) => send(
    response, status, 'text/html; charset=utf-8',
    page('Sign in with Apple', `<h1>Your request could not be completed because of an error.</h1>
<p class="error" id="error">${escapeHtml(error)}</p>
<p>${escapeHtml(description)}</p>`),
  );

  function authorize(url, response) {
    const params = url.searchParams;
    const entry = { params: Object.fromEntries(params), outcome: '' };
    authorizations.push(entry);
    const fail = (error, description) => {
      entry.outcome = `${error}: ${description}`;
      log(`authorize refused: ${entry.outcome}`);
      errorPage(response, 400, error, description);
    };
    for (const name of new Set(params.keys())) {
      if (params.getAll(name).length > 1) return fail('invalid_request', `${name} is given more than once`);
    }
    if (params.get('client_id') !== registered.clientId) return fail('invalid_client', 'Invalid client id or web redirect url.');
    if (params.get('redirect_uri') !== registered.redirectUri) return fail('invalid_request', 'Invalid web redirect url.');
    if (params.get('response_type') !== 'code') return fail('unsupported_response_type', 'response_type must be code');
    const scopes = (params.get('scope') ?? '').split(' ').filter(Boolean);
    const unknown = scopes.filter((scope) => !SCOPES.has(scope));
    if (unknown.length > 0) return fail('invalid_scope', `unknown scope ${unknown.join(' ')}`);
    const responseMode = params.get('response_mode') ?? 'query';
    if ((scopes.includes('name') || scopes.includes('email')) && responseMode !== 'form_post') {
      return fail('invalid_request', 'response_mode must be form_post when name or email scope is requested.');
    }
    if (responseMode !== 'form_post') return fail('invalid_request', 'this stand-in answers with form_post only');
    if (params.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(params.get('code_challenge') ?? '')) {
      return fail('invalid_request', 'PKCE: an S256 code_challenge is required');
    }
    const tx = randomBytes(16).toString('hex');
    transactions.set(tx, {
      state: params.get('state') ?? undefined,
      nonce: params.get('nonce') ?? undefined,
      codeChallenge: params.get('code_challenge'),
      redirectUri: params.get('redirect_uri'),
      scopes,
      entry,
    });
    const before = consented.get(registered.clientId);
    entry.outcome = before ? 'consent page (again)' : 'consent page (first time)';
    log(`authorize: ${entry.outcome}, scope ${JSON.stringify(scopes.join(' '))}`);
    const who = escapeHtml(account.email);
    const body = before
      ? `<h1>Sign in with Apple</h1>
<p>Do you want to continue using <strong>${escapeHtml(registered.clientId)}</strong> with your Apple ID “${who}”?</p>
<form method="post" action="/auth/consent">
<input type="hidden" name="tx" value="${tx}">
<div class="buttons">
<button class="secondary" type="submit" name="decision" value="cancel">Cancel</button>
<button class="primary" type="submit" name="decision" value="continue">Continue</button>
</div>
</form>`
      : `<h1>Sign in with Apple</h1>
<p>Create an account for <strong>${escapeHtml(registered.clientId)}</strong> using your Apple ID “${who}”.</p>
<form method="post" action="/auth/consent">
<input type="hidden" name="tx" value="${tx}">
${scopes.includes('name') ? `<label for="first">First name</label>
<input type="text" id="first" name="firstName" value="${escapeHtml(account.firstName)}">
<label for="last">Last name</label>
<input type="text" id="last" name="lastName" value="${escapeHtml(account.lastName)}">` : ''}
${scopes.includes('email') ? `<fieldset>
<legend>Email</legend>
<label><input type="radio" name="email" value="share" checked> Share My Email (${who})</label>
<label><input type="radio" name="email" value="hide"> Hide My Email (forward to ${who})</label>
</fieldset>` : ''}
<div class="buttons">
<button class="secondary" type="submit" name="decision" value="cancel">Cancel</button>
<button class="primary" type="submit" name="decision" value="continue">Continue</button>
</div>
</form>`;
    return send(response, 200, 'text/html; charset=utf-8', page('Sign in with Apple', body));
  }

  /** The page that posts `fields` to the Return URL by itself (a Continue button without script). */
  function postBack(response, redirectUri, fields) {
    const entry = { action: redirectUri, fields: Object.keys(fields), user: fields.user, error: fields.error };
    formPosts.push(entry);
    log(`posting the answer to ${redirectUri}: ${entry.fields.join(', ')}`);
    const inputs = Object.entries(fields)
      .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
      .join('\n');
    const target = new URL(redirectUri).host;
    const body = `<h1>Returning to ${escapeHtml(target)}</h1>
<form method="post" action="${escapeHtml(redirectUri)}" id="answer">
${inputs}
<noscript>
<p>JavaScript is off: continue to return to ${escapeHtml(target)}.</p>
<div class="buttons"><button class="primary" type="submit">Continue</button></div>
</noscript>
</form>`;
    send(response, 200, 'text/html; charset=utf-8', page('Sign in with Apple', body, { onload: 'document.forms[0].submit()' }));
  }

  function consent(form, response) {
    const tx = transactions.get(form.get('tx') ?? '');
    if (!tx) return errorPage(response, 400, 'invalid_request', 'This sign-in has expired. Please start again.');
    transactions.delete(form.get('tx'));
    const answer = (fields) => postBack(response, tx.redirectUri, {
      ...fields,
      ...(tx.state === undefined ? {} : { state: tx.state }),
    });
    if (form.get('decision') !== 'continue') {
      tx.entry.outcome = 'cancelled';
      log('consent: cancelled');
      return answer({ error: 'user_cancelled_authorize' });
    }
    let choice = consented.get(registered.clientId);
    const first = !choice;
    if (first) {
      choice = {
        firstName: form.get('firstName') ?? '',
        lastName: form.get('lastName') ?? '',
        hide: form.get('email') === 'hide',
      };
      consented.set(registered.clientId, choice);
    }
    const email = choice.hide ? account.relayEmail : account.email;
    const code = `c${randomBytes(16).toString('hex')}.0.${randomBytes(8).toString('hex')}`;
    codes.set(code, {
      clientId: registered.clientId,
      redirectUri: tx.redirectUri,
      codeChallenge: tx.codeChallenge,
      nonce: tx.nonce,
      email: tx.scopes.includes('email') ? email : undefined,
      isPrivate: choice.hide,
      expires: Date.now() + CODE_LIFETIME_MS,
    });
    tx.entry.outcome = first ? 'approved (first consent)' : 'approved';
    log(`consent: ${tx.entry.outcome}`);
    const fields = { code };
    // The name and the address, once: on the first consent for this Services ID.
    if (first && (tx.scopes.includes('name') || tx.scopes.includes('email'))) {
      const user = {};
      if (tx.scopes.includes('name')) user.name = { firstName: choice.firstName, lastName: choice.lastName };
      if (tx.scopes.includes('email')) user.email = email;
      fields.user = JSON.stringify(user);
    }
    return answer(fields);
  }

  function idToken(grant, accessToken) {
    const t = now();
    const hash = createHash('sha256').update(accessToken, 'ascii').digest();
    const claims = {
      iss: issuer,
      aud: registered.clientId,
      exp: t + 600,
      iat: t,
      sub: account.sub,
      at_hash: b64url(hash.subarray(0, 16)),
      auth_time: t,
      nonce_supported: true,
      ...(grant.nonce === undefined ? {} : { nonce: grant.nonce }),
      ...(grant.email === undefined ? {} : {
        email: grant.email,
        email_verified: 'true',
        is_private_email: grant.isPrivate ? 'true' : 'false',
      }),
    };
    const input = `${json64({ kid, alg: 'RS256' })}.${json64(claims)}`;
    return { token: `${input}.${b64url(sign('sha256', Buffer.from(input), signingKey))}`, claims };
  }

  async function token(request, body, response) {
    const entry = {
      at: new Date().toISOString(),
      contentType: request.headers['content-type'] ?? '',
      basicAuth: /^basic /i.test(request.headers.authorization ?? ''),
      params: [],
      clientId: undefined,
      grantType: undefined,
      redirectUri: undefined,
      codeVerifierSent: false,
      secret: undefined,
      status: 0,
      error: undefined,
      reason: undefined,
      idToken: undefined,
    };
    tokenRequests.push(entry);
    const refuse = (status, error, reason) => {
      Object.assign(entry, { status, error, reason });
      log(`token refused: ${error} (${reason})`);
      sendJson(response, status, { error });
    };
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (!/^application\/x-www-form-urlencoded/i.test(entry.contentType)) return refuse(400, 'invalid_request', `content type ${entry.contentType}`);
    const form = new URLSearchParams(body);
    entry.params = [...new Set(form.keys())].sort();
    for (const name of entry.params) {
      if (form.getAll(name).length > 1) return refuse(400, 'invalid_request', `${name} given more than once`);
    }
    entry.clientId = form.get('client_id') ?? undefined;
    entry.grantType = form.get('grant_type') ?? undefined;
    entry.redirectUri = form.get('redirect_uri') ?? undefined;
    entry.codeVerifierSent = form.has('code_verifier');
    // client_secret_post only: Apple's document lists nothing else.
    if (entry.basicAuth) return refuse(400, 'invalid_client', 'an Authorization header: this issuer takes client_secret_post only');
    if (entry.clientId !== registered.clientId) return refuse(400, 'invalid_client', `unknown client_id ${JSON.stringify(entry.clientId)}`);
    const secret = form.get('client_secret');
    if (!secret) return refuse(400, 'invalid_client', 'no client_secret');
    const checked = checkClientSecret(secret, registered, entry.clientId);
    entry.secret = {
      verified: checked.ok,
      header: checked.header,
      claims: checked.claims,
      // Tells two secrets apart without keeping either.
      sha256: createHash('sha256').update(secret).digest('hex').slice(0, 16),
    };
    if (!checked.ok) return refuse(400, 'invalid_client', `client secret: ${checked.reason}`);
    if (entry.grantType !== 'authorization_code') return refuse(400, 'unsupported_grant_type', `grant_type ${entry.grantType}`);
    const code = form.get('code') ?? '';
    const grant = codes.get(code);
    // Single use: gone at its first presentation, whatever comes of it.
    codes.delete(code);
    if (!grant) return refuse(400, 'invalid_grant', 'unknown or used code');
    if (grant.expires < Date.now()) return refuse(400, 'invalid_grant', 'expired code');
    if (grant.clientId !== entry.clientId) return refuse(400, 'invalid_grant', 'the code is another client\'s');
    if (entry.redirectUri !== grant.redirectUri) return refuse(400, 'invalid_grant', `redirect_uri ${JSON.stringify(entry.redirectUri)} is not the authorization's`);
    const verifier = form.get('code_verifier') ?? '';
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return refuse(400, 'invalid_grant', 'no valid code_verifier');
    if (b64url(createHash('sha256').update(verifier, 'ascii').digest()) !== grant.codeChallenge) {
      return refuse(400, 'invalid_grant', 'the code_verifier does not match the code_challenge');
    }
    const accessToken = `a${randomBytes(16).toString('hex')}.0.${randomBytes(8).toString('hex')}`;
    const id = idToken(grant, accessToken);
    entry.status = 200;
    entry.idToken = id.claims;
    log(`token issued: secret iat ${checked.claims.iat}, exp ${checked.claims.exp}, kid ${checked.header.kid}; id_token for ${id.claims.sub}`);
    sendJson(response, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 3600,
      refresh_token: `r${randomBytes(16).toString('hex')}.0.${randomBytes(8).toString('hex')}`,
      id_token: id.token,
    });
  }

  const server = http.createServer((request, response) => {
    const url = new URL(request.url, issuer);
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size <= 64 * 1024) chunks.push(chunk);
    });
    request.on('end', async () => {
      response.on('finish', () => {
        requests.push({ method: request.method, path: url.pathname, status: response.statusCode, userAgent: request.headers['user-agent'] ?? '' });
        log(`${request.method} ${url.pathname} ${response.statusCode} (${request.headers['user-agent'] ?? 'no user agent'})`);
      });
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        const route = `${request.method} ${url.pathname}`;
        if (route === 'GET /.well-known/openid-configuration') return sendJson(response, 200, discovery);
        if (route === 'GET /auth/keys') return sendJson(response, 200, { keys: [jwk] });
        if (route === 'GET /auth/authorize') return authorize(url, response);
        if (route === 'POST /auth/consent') return consent(new URLSearchParams(body), response);
        if (route === 'POST /auth/token') return await token(request, body, response);
        return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
      } catch (error) {
        log(`error: ${error.stack}`);
        if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'stand-in error\n');
        else response.end();
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  log(`listening on http://127.0.0.1:${port} as issuer ${issuer} for ${registered.clientId} (team ${registered.teamId}, key ${registered.keyId})`);

  let stopped = false;
  return {
    upstream: `127.0.0.1:${port}`,
    issuer,
    authorizations,
    formPosts,
    tokenRequests,
    requests,
    /** The public half of its ID-token key. */
    signingKey: { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, alg: 'RS256' },
    log: () => lines.join('\n'),
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
