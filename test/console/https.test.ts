// HTTPS with a self-signed certificate generated on first start and kept across
// restarts; Secure __Host- session cookie; config cross-field checks of the section.
import t from 'tap';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startConsoleGateway, baseConfig, PASSWORDS } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { parseConfig, type ConfigError } from '../../edge/config/load.js';

function get(url: string, ca: string, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', ca, headers: opts.headers ?? {}, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The "technician console listening" log record. */
function listening(lines: string[]): { fingerprint256?: string; selfSigned?: boolean } {
  for (const l of lines) {
    const rec = JSON.parse(l) as { msg?: string; fingerprint256?: string; selfSigned?: boolean };
    if (rec.msg === 'technician console listening') return rec;
  }
  return {};
}

/** SHA-256 fingerprint of the certificate a TLS server presents. */
function servedFingerprint(base: string): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

t.test('self-signed HTTPS: generated once, verified by its own certificate, Secure cookie', async (t) => {
  const dir = tempDir('ee-console-tls-');
  const cfg = baseConfig(dir, { console: { host: '127.0.0.1', port: 0, tls: { enabled: true } } });
  let g = await startConsoleGateway({ dir, config: cfg });
  t.match(g.base, /^https:\/\//);
  const certPath = join(dir, 'data', 'console-tls', 'cert.pem');
  const cert = readFileSync(certPath, 'utf8');
  const x = new X509Certificate(cert);
  t.match(x.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  // The technician compares the fingerprint the log gives with the one the browser shows:
  // the logged value must be exactly the served certificate's (as the browser formats it,
  // upper-case hex pairs joined by colons), not merely appear somewhere in the log.
  const logged = listening(g.logLines);
  t.equal(logged.fingerprint256, x.fingerprint256, "the log gives the certificate file's SHA-256 fingerprint");
  t.match(logged.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, "in the browser's format");
  t.equal(logged.selfSigned, true);
  t.equal(await servedFingerprint(g.base), x.fingerprint256, 'the certificate the console serves is the one logged');
  const setup = await get(`${g.base}/api/setup`, cert, { method: 'POST', body: JSON.stringify({ token: g.setupToken(), user: 'admin', password: PASSWORDS.admin }), headers: { 'content-type': 'application/json' } });
  t.equal(setup.status, 201);
  const cookie = String(setup.headers['set-cookie']);
  t.match(cookie, /^__Host-ee_session=/);
  t.match(cookie, /Secure/);
  t.match(String(setup.headers['strict-transport-security']), /max-age/);
  const page = await get(`${g.base}/`, cert, { headers: { 'accept-encoding': 'br' } });
  t.equal(page.status, 200);
  t.equal(page.headers['content-encoding'], 'br');
  await g.stop();
  g = await startConsoleGateway({ dir });
  t.equal(readFileSync(certPath, 'utf8'), cert, 'the same certificate after a restart');
  t.equal(listening(g.logLines).fingerprint256, x.fingerprint256, 'the same fingerprint logged after a restart');
  t.equal((await get(`${g.base}/api/session`, cert)).status, 200);
  await g.stop();
});

t.test('config checks of the console section', async (t) => {
  const base = 'site: { id: s }\ngateway: { id: g }\n';
  const err = t.throws(() => parseConfig(`${base}console: { tls: { enabled: true, cert: /c.pem } }\nhttp: { port: 8080 }\n`, 'x')) as ConfigError;
  t.match(err.problems.join('\n'), /console\.tls: cert and key must be given together/);
  t.match(err.problems.join('\n'), /console\.port: 8080 is already used by http\.port/);
  const bad = t.throws(() => parseConfig(`${base}console: { port: 70000, sessionTtlMin: 1, bogus: 1 }\n`, 'x')) as ConfigError;
  t.match(bad.problems.join('\n'), /console\.port: must be <= 65535/);
  t.match(bad.problems.join('\n'), /console\.sessionTtlMin: must be >= 5/);
  t.match(bad.problems.join('\n'), /console\.bogus: unknown key/);
  const ok = parseConfig(base, 'x');
  t.equal(ok.config.console.enabled, true);
  t.equal(ok.config.console.port, 8080);
});
