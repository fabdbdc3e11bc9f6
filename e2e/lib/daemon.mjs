// A server program a scenario starts and owns (nginx, caddy): spawned in the foreground as the
// current user, its output collected, waited for until it is ready, stopped with SIGTERM
// (SIGKILL after a grace period), and never left running after the test process. When the
// program is missing the scenario fails, saying how to install it: it never skips.
import { spawn } from 'node:child_process';

const READY_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 3_000;

const running = new Set();
// SIGTERM, not SIGKILL: nginx's master then stops its workers, which a killed master would
// leave listening.
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

/**
 * Starts `bin` with `args` (and `env`) and waits until `ready()` holds. `name`, `install`
 * (the apt package) and `pathVariable` (the variable naming another binary) word the failure
 * when it is missing; `log(output)` gives what to show when it fails (its output, and any log
 * file of its own); `portTaken` matches that log when a port was taken (callers retry on
 * another). Returns `{ output(), stop() }`.
 */
export async function startDaemon({ name, bin, args, env, install, pathVariable, ready, readiness, log, portTaken }) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  let output = '';
  const collect = (chunk) => { output += chunk.toString(); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exited = null;
  let spawnError = null;
  const exit = new Promise((resolve) => {
    child.on('error', (error) => { spawnError = error; exited = { error: error.message }; running.delete(child); resolve(exited); });
    child.on('exit', (code, signal) => { exited = { code, signal }; running.delete(child); resolve(exited); });
  });
  running.add(child);

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      await exit;
      clearTimeout(timer);
    }
  };

  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    if (exited) {
      if (spawnError?.code === 'ENOENT') {
        throw new Error(
          `${name} not found at ${bin}: install Debian's ${install} (\`apt-get install -y ${install}\`; e2e/run.sh, which .ci/run runs, does it when it is missing), ` +
            `or point ${pathVariable} at a ${name} binary. The ${name} scenarios do not skip without it.`,
        );
      }
      const text = await log(output);
      const error = new Error(`${name} exited (${JSON.stringify(exited)}) before serving:\n${text}`);
      error.portTaken = portTaken.test(text);
      throw error;
    }
    if (await ready()) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not ${readiness} within ${READY_DEADLINE_MS} ms:\n${await log(output)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { output: () => output, stop };
}
