// Reads a scenario's server database with Debian's sqlite3, as an operator would.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Rows of the server's SQLite database (`e2e.db` in its folder), read-only, as JSON. */
export async function query(app, sql) {
  const file = path.join(app.dir, 'e2e.db');
  let stdout;
  try {
    ({ stdout } = await execFileAsync('sqlite3', ['-readonly', '-json', file, sql]));
  } catch (error) {
    if (error.code === 'ENOENT') {
      throw new Error('sqlite3 not found: install Debian\'s sqlite3 (`apt-get install -y sqlite3`; e2e/run.sh does it when it is missing)');
    }
    throw error;
  }
  return stdout.trim() ? JSON.parse(stdout) : [];
}
