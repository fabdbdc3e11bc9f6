// loginwith as deployed, in miniature, on loopback: the real binary in production mode
// (LOGINWITH_ENV=production) on plain http behind Debian's nginx, which ends TLS with a
// certificate from a CA the test made; Facebook played by the development provider as its own
// process (examples/facebook_stand_in.rs), reached over https through the same nginx, by the
// browser (its dialog) and by loginwith (the token and /me calls, which trust the test CA only
// through SSL_CERT_FILE).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { binaryPath, freePort, REPO_ROOT, startApp } from './app.mjs';
import { startNginx } from './nginx.mjs';

/** The stand-in, built by `cargo test` (or `cargo build --example facebook_stand_in`) beside the binary. */
export function standInPath() {
  return process.env.FACEBOOK_STAND_IN_BIN
    ? path.resolve(process.env.FACEBOOK_STAND_IN_BIN)
    : path.join(path.dirname(binaryPath()), 'examples', 'facebook_stand_in');
}

const READY_DEADLINE_MS = 10_000;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts the Facebook stand-in on a loopback port of its choosing for one app registration.
 * Returns `{ upstream: 'host:port', log(), stop() }` once it has printed that it listens.
 */
export async function startStandIn({ clientId, clientSecret, redirectUri, latencyMs = 0 }) {
  const bin = standInPath();
  if (!existsSync(bin)) {
    throw new Error(
      `Facebook stand-in not found at ${bin}: \`cargo test\` builds it, or \`cargo build --example facebook_stand_in\` in ${REPO_ROOT} (e2e/run.sh does), or set FACEBOOK_STAND_IN_BIN`,
    );
  }
  const child = spawn(bin, [
    '--listen', '127.0.0.1:0',
    '--client-id', clientId,
    '--client-secret', clientSecret,
    '--redirect-uri', redirectUri,
    '--latency-ms', String(latencyMs),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; running.delete(child); resolve(); });
  });
  const stop = async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
  };
  // Ready when it prints its address (it does so after binding), dead when it exits first.
  const upstream = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stand-in did not say it listens within ${READY_DEADLINE_MS} ms:\n${output}`)), READY_DEADLINE_MS);
    const collect = (chunk) => {
      output += chunk.toString();
      const match = /listening on http:\/\/(\S+)/.exec(output);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    exit.then(() => { clearTimeout(timer); reject(new Error(`the stand-in exited (${JSON.stringify(exited)}):\n${output}`)); });
  }).catch(async (error) => { await stop(); throw error; });
  return { upstream, log: () => output, stop };
}

/**
 * Starts the stand-in, loginwith (`config` on top of the production settings below) and
 * nginx in front of both. `certs` comes from makeCertificates. Returns what scenario()
 * expects (`url`: the public https origin; `log()`, `stop()`) and `providerUrl`, `app`,
 * `nginx`. Ports are chosen free, so a rare clash with another process is retried.
 */
export async function startProductionStack(certs, config = {}, { logFile, latencyMs = 0 } = {}) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startOnce(certs, config, { logFile, latencyMs });
    } catch (error) {
      lastError = error;
      if (!error.portTaken) throw error;
    }
  }
  throw lastError;
}

async function startOnce(certs, config, { logFile, latencyMs }) {
  const publicPort = await freePort();
  let providerPort = await freePort();
  while (providerPort === publicPort) providerPort = await freePort();
  const url = `https://localhost:${publicPort}`;
  // Another host name than the app's, as Facebook is: the redirect back is cross-site, so
  // SameSite=Lax is what lets the session cookie come along.
  const providerUrl = `https://127.0.0.1:${providerPort}`;
  // A real-looking registration: an all-digit App ID and a random secret.
  const clientId = String(1_000_000_000 + Math.floor(Math.random() * 8_999_999_999));
  const clientSecret = randomBytes(16).toString('hex');

  const stopping = [];
  const stopAll = async () => {
    for (const stop of stopping.reverse()) await stop().catch(() => {});
  };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-nginx-'));
  stopping.push(() => rm(dir, { recursive: true, force: true }));
  try {
    const standIn = await startStandIn({
      clientId,
      clientSecret,
      redirectUri: `${url}/callback/facebook`,
      latencyMs,
    });
    stopping.push(standIn.stop);
    const app = await startApp({
      env: 'production',
      'server.public_url': url,
      'providers.facebook.client_id': clientId,
      'providers.facebook.client_secret': clientSecret,
      'providers.facebook.authorize_url': `${providerUrl}/dialog/oauth`,
      'providers.facebook.token_url': `${providerUrl}/oauth/access_token`,
      'providers.facebook.api_url': providerUrl,
      ...config,
    }, {
      logFile,
      // The only roots loginwith's TLS client then trusts (rustls-native-certs reads it
      // instead of the system store): a sign-in that completes proves it was honoured.
      env: { SSL_CERT_FILE: certs.caFile },
      // Its own port is plain http; the Host it is asked for is the public one.
      readyHost: `localhost:${publicPort}`,
    });
    stopping.push(app.stop);
    const nginx = await startNginx({
      dir,
      caPem: certs.caPem,
      certificateFile: certs.certificateFile,
      keyFile: certs.keyFile,
      app: { port: publicPort, upstream: `127.0.0.1:${app.port}` },
      standIn: { port: providerPort, upstream: standIn.upstream },
    });
    // Kept next to the scenario's screenshots, like the server's log.
    stopping.push(async () => {
      if (!logFile) return;
      const artifacts = path.dirname(logFile);
      await mkdir(artifacts, { recursive: true });
      for (const name of ['nginx.conf', 'error.log', 'access.log']) {
        await copyFile(path.join(dir, name), path.join(artifacts, `nginx-${name}`)).catch(() => {});
      }
      await writeFile(path.join(artifacts, 'stand-in.log'), standIn.log());
    });
    stopping.push(nginx.stop);

    const nginxErrors = () => {
      try { return readFileSync(path.join(dir, 'error.log'), 'utf8'); } catch { return ''; }
    };
    return {
      url,
      port: publicPort,
      providerUrl,
      app,
      nginx,
      log: () => `${app.log()}\n--- nginx error.log ---\n${nginxErrors()}\n--- stand-in ---\n${standIn.log()}`,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
