// A certificate authority made by the test, and a server certificate it signs, with Debian's
// openssl command (the same tool an operator would use): nothing is downloaded and nothing is
// added to the machine's trust store. Whoever must trust it is told explicitly (loginwith
// through SSL_CERT_FILE, Node through `ca`, Chromium through the leaf's SPKI hash).
import { execFile } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs `command args` and returns its stdout; a missing command fails with what to install
 * (`pkg`, a Debian package), never a skip.
 */
export async function runTool(command, args, pkg) {
  try {
    const { stdout } = await run(command, args, { timeout: 30_000 });
    return stdout;
  } catch (error) {
    if (error.code === 'ENOENT') {
      throw new Error(
        `${command} not found: install Debian's ${pkg} (\`apt-get install -y ${pkg}\`; e2e/run.sh, which .ci/run runs, does it when it is missing). ` +
          'The production scenario does not skip without it.',
      );
    }
    throw new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${error.stderr ?? ''}`, { cause: error });
  }
}

// One file for both certificates' extensions. The CA may only sign certificates; the leaf is
// a TLS server certificate for both names the scenario uses (Chromium and rustls ignore the
// common name and read only subjectAltName).
const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/**
 * Makes `ca.crt` and `leaf.crt`/`leaf.key` (EC P-256, valid for two days) in `dir`.
 * Returns their paths and `spki`: the base64 SHA-256 of the leaf's SubjectPublicKeyInfo, the
 * form Chromium's --ignore-certificate-errors-spki-list takes.
 */
export async function makeCertificates(dir) {
  const file = (name) => path.join(dir, name);
  await writeFile(file('openssl.cnf'), OPENSSL_CONFIG);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await runTool('openssl', [
    'req', '-x509', ...key, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2',
    '-subj', '/CN=loginwith e2e test CA', '-config', file('openssl.cnf'), '-extensions', 'ca',
  ], 'openssl');
  await runTool('openssl', [
    'req', '-new', ...key, '-keyout', file('leaf.key'), '-out', file('leaf.csr'),
    '-subj', '/CN=localhost', '-config', file('openssl.cnf'),
  ], 'openssl');
  await runTool('openssl', [
    'x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-out', file('leaf.crt'),
    '-extfile', file('openssl.cnf'), '-extensions', 'leaf',
  ], 'openssl');

  const leafPem = await readFile(file('leaf.crt'));
  const caPem = await readFile(file('ca.crt'));
  const leaf = new X509Certificate(leafPem);
  if (!leaf.checkIssued(new X509Certificate(caPem))) {
    throw new Error('openssl made a leaf certificate that the test CA did not issue');
  }
  const spkiDer = leaf.publicKey.export({ type: 'spki', format: 'der' });
  return {
    caFile: file('ca.crt'),
    caPem,
    certificateFile: file('leaf.crt'),
    keyFile: file('leaf.key'),
    spki: createHash('sha256').update(spkiDer).digest('base64'),
  };
}
