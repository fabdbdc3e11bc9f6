// The deploy folder's forward-authentication sites, as the scenarios run them: the very files
// (deploy/nginx/forward-auth.conf, deploy/caddy/Caddyfile) with only their names, ports and
// TLS lines replaced, every replacement asserted, so that the files cannot drift away from
// what is tested.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from './app.mjs';

export const NGINX_SITE = path.join(REPO_ROOT, 'deploy', 'nginx', 'forward-auth.conf');
export const CADDY_SITE = path.join(REPO_ROOT, 'deploy', 'caddy', 'Caddyfile');

/** `text` with `from` replaced by `to`; fails when `from` is not in `file` exactly once. */
function replaceOnce(text, from, to, file) {
  const parts = text.split(from);
  assert.equal(parts.length, 2, `${path.relative(REPO_ROOT, file)} holds ${JSON.stringify(from)} exactly once`);
  return parts.join(to);
}

/** The lines that are not comments: what must hold no production name any more. */
const directives = (text) => text.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');

/**
 * deploy/nginx/forward-auth.conf as a plain-http server for `host` on 127.0.0.1:`port`, in
 * front of the site on `sitePort`, asking loginwith on `appPort`.
 */
export async function nginxSite({ host, port, appPort, sitePort }) {
  const file = NGINX_SITE;
  let site = await readFile(file, 'utf8');
  site = replaceOnce(site, 'listen 443 ssl http2;', `listen 127.0.0.1:${port};`, file);
  site = replaceOnce(site, 'listen [::]:443 ssl http2;', '', file);
  site = site.split('\n').filter((line) => !/^\s*ssl_/.test(line)).join('\n');
  site = replaceOnce(site, 'server_name app.example.com;', `server_name ${host};`, file);
  site = replaceOnce(site, 'proxy_pass http://127.0.0.1:8080;', `proxy_pass http://127.0.0.1:${sitePort};`, file);
  site = replaceOnce(site, 'proxy_pass http://127.0.0.1:3000/auth/check;', `proxy_pass http://127.0.0.1:${appPort}/auth/check;`, file);
  // The 403 page's location (rewritten to /auth/check).
  site = replaceOnce(site, 'proxy_pass http://127.0.0.1:3000;', `proxy_pass http://127.0.0.1:${appPort};`, file);
  assert.doesNotMatch(directives(site), /example\.com|ssl/, 'every production name and TLS line was replaced');
  return site;
}

/**
 * deploy/caddy/Caddyfile as a plain-http site `http://host:port`, in front of the site on
 * `sitePort`, asking loginwith on `appPort` (the global options are lib/caddy.mjs's).
 */
export async function caddySite({ host, port, appPort, sitePort }) {
  const file = CADDY_SITE;
  let site = await readFile(file, 'utf8');
  site = replaceOnce(site, 'app.example.com {', `http://${host}:${port} {`, file);
  site = replaceOnce(site, 'forward_auth 127.0.0.1:3000 {', `forward_auth 127.0.0.1:${appPort} {`, file);
  site = replaceOnce(site, 'reverse_proxy 127.0.0.1:8080', `reverse_proxy 127.0.0.1:${sitePort}`, file);
  assert.doesNotMatch(directives(site), /example\.com/, 'every production name was replaced');
  return site;
}
