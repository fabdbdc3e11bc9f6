// Starts the real loginwith binary on a free loopback port with its own SQLite file, waits
// until it answers, and stops it afterwards. One instance per scenario, run from an empty
// temporary folder: no static/ or config/ beside it, as when the binary is copied elsewhere.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '..');

/** The binary under test: LOGINWITH_BIN, else ../target/debug/loginwith from e2e/. */
export function binaryPath() {
  return process.env.LOGINWITH_BIN
    ? path.resolve(process.env.LOGINWITH_BIN)
    : path.join(REPO_ROOT, 'target', 'debug', 'loginwith');
}

const READY_DEADLINE_MS = 20_000;
// SIGTERM first (graceful shutdown); a server still serving a hung provider call gets SIGKILL.
const STOP_DEADLINE_MS = 1_500;

/** A port nobody listens on right now (the OS picks it; a rare race is retried below). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Every running instance, so none outlives the test process even when a test throws. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts loginwith. `config` maps configuration keys to values, e.g.
 * `{ 'dev_provider.latency_ms': 3000 }`, turned into `LOGINWITH_DEV_PROVIDER__LATENCY_MS`
 * (`env` becomes `LOGINWITH_ENV`). Options: `logFile` keeps its output; `env` adds other
 * environment variables (e.g. `SSL_CERT_FILE`); `readyHost` is the `Host` the readiness
 * probe sends, for an app whose public URL is not its listening address (behind a proxy);
 * `port` is the loopback port to listen on, for a scenario whose providers must know the
 * app's redirect URIs before it starts (a port taken meanwhile is then the caller's to retry:
 * the error has `portTaken`); `readyPath` is the page the readiness probe asks for (default
 * `/`; `/auth` for an app mounted there); `toml` is the text of a configuration file, for
 * what the environment cannot say (`[[access.rules]]`, an array of tables): written beside
 * the server's folder, never in it, and passed as `LOGINWITH_CONFIG` (the variables above
 * still win over it). Returns `{ url, port, dir, log(), stop() }`.
 */
export async function startApp(config = {}, { logFile, env: extraEnv = {}, readyHost, port, readyPath = '/', toml } = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`loginwith binary not found at ${bin}: run \`cargo build\` in ${REPO_ROOT} or set LOGINWITH_BIN`);
  }
  let lastError;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startOnce(bin, config, { logFile, extraEnv, readyHost, port, readyPath, toml });
    } catch (error) {
      lastError = error;
      if (!error.portTaken || port) throw error;
    }
  }
  throw lastError;
}

/** GET `readyPath` on `url` with `Host: host`; resolves to the status (fetch cannot set Host). */
function probe(url, host, readyPath) {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}${readyPath}`, { headers: { host }, timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('error', reject);
    request.on('timeout', () => request.destroy(new Error('timeout')));
  });
}

async function startOnce(bin, config, { logFile, extraEnv, readyHost, port: fixedPort, readyPath, toml }) {
  const port = fixedPort ?? await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'loginwith-e2e-'));
  // Beside the folder, which must hold nothing but what the server writes.
  const configFile = toml === undefined ? undefined : `${dir}.toml`;
  if (configFile) await writeFile(configFile, toml);
  // Only what we set: an inherited LOGINWITH_* (LOGINWITH_BIN included) would be read as
  // configuration, and unknown keys stop start-up.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('LOGINWITH_')),
  );
  Object.assign(env, {
    RUST_LOG: process.env.E2E_RUST_LOG || 'info',
    LOGINWITH_SERVER__BIND: `127.0.0.1:${port}`,
    LOGINWITH_SERVER__PUBLIC_URL: url,
    LOGINWITH_DATABASE__URL: `sqlite://${path.join(dir, 'e2e.db')}`,
    // Quick polling keeps the suite fast; the preloader's behaviour is the same.
    LOGINWITH_LOGIN__POLL_INTERVAL_MS: '200',
    // Never the fixed default metrics port: instances run side by side.
    LOGINWITH_METRICS__BIND: '127.0.0.1:0',
  });
  for (const [key, value] of Object.entries(config)) {
    env[`LOGINWITH_${key.toUpperCase().replaceAll('.', '__')}`] = String(value);
  }
  if (configFile) env.LOGINWITH_CONFIG = configFile;
  Object.assign(env, extraEnv);

  // The folder is empty until the app creates its database there: whatever the pages need
  // must come from the binary itself.
  const child = spawn(bin, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const collect = (chunk) => { output += chunk.toString(); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      resolve(exited);
    });
  });

  const cleanup = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      await exit;
      clearTimeout(timer);
    }
    if (logFile) {
      await mkdir(path.dirname(logFile), { recursive: true });
      await writeFile(logFile, output);
    }
    await rm(dir, { recursive: true, force: true });
    if (configFile) await rm(configFile, { force: true });
  };

  // Ready when GET `readyPath` answers 200; fail at once if the process dies, or at the deadline.
  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    if (exited) {
      await cleanup();
      const error = new Error(`loginwith exited (${JSON.stringify(exited)}) before answering on ${url}:\n${output}`);
      error.portTaken = /cannot listen/.test(output);
      throw error;
    }
    try {
      const status = readyHost
        ? await probe(url, readyHost, readyPath)
        : (await fetch(`${url}${readyPath}`, { redirect: 'manual', signal: AbortSignal.timeout(1000) })).status;
      if (status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await cleanup();
      throw new Error(`loginwith did not answer 200 on ${url}${readyPath} within ${READY_DEADLINE_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    url,
    port,
    /** The server's working folder (empty when it started). */
    dir,
    /** Everything the server printed so far. */
    log: () => output,
    stop: cleanup,
  };
}
