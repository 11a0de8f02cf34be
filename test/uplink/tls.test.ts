// TLS and mutual TLS against a real Mosquitto with certificates made for the test.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../helpers/broker.js';
import { waitFor } from '../helpers/subscriber.js';
import { startGateway, tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

function makePki(dir: string) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ext = join(dir, 'san.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const ca of ['ca', 'otherca']) {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`);
  }
  const issue = (name: string, cn: string, withSan: boolean) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, ...(withSan ? ['-extfile', ext] : []));
  };
  issue('server', 'localhost', true);
  issue('client', 'gw-1', false);
  chmodSync(dir, 0o755);
  for (const f of ['ca.pem', 'server.pem', 'server.key']) chmodSync(join(dir, f), 0o644);
  return { ca: join(dir, 'ca.pem'), otherCa: join(dir, 'otherca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server.key') };
}

t.test('mqtts with mutual TLS: connects with the right CA and client certificate, refuses otherwise', async (t) => {
  const pki = makePki(tempDir());
  const tlsPort = await freePort();
  const broker = await Broker.start(`listener ${tlsPort} 127.0.0.1\ncafile ${pki.ca}\ncertfile ${pki.serverCert}\nkeyfile ${pki.serverKey}\nrequire_certificate true\n`);
  t.teardown(() => broker.stop());
  const url = `mqtts://127.0.0.1:${tlsPort}`;

  const good = await startGateway({ gateway: { id: 'good' }, uplink: { url, tls: { ca: pki.ca, cert: pki.cert, key: pki.key } } });
  t.teardown(() => good.stop());
  await waitFor(() => good.uplink.isConnected(), 8000, 'mutual TLS connect');
  t.pass('connected with mutual TLS');
  await good.outbox.append({ stream: 'event', type: 'tls.test', data: {} });
  await waitFor(() => good.outbox.stats().count === 0, 5000, 'published over TLS');

  // Each refusal must be an attempt that was made and failed for the stated reason, not
  // the absence of one: wait for the uplink to count a failed attempt (bounded by that
  // event, not a sleep), then check its error names the reason, and for the client
  // without a certificate that the broker's TLS listener saw the handshake and refused it.
  const failedOnce = (g: typeof good) => g.uplink.state().failures >= 1 && g.uplink.state().lastError !== undefined;
  const noCert = await startGateway({ gateway: { id: 'nocert' }, uplink: { url, tls: { ca: pki.ca } } });
  t.teardown(() => noCert.stop());
  const wrongCa = await startGateway({ gateway: { id: 'wrongca' }, uplink: { url, tls: { ca: pki.otherCa, cert: pki.cert, key: pki.key } } });
  t.teardown(() => wrongCa.stop());
  await waitFor(() => failedOnce(noCert) && failedOnce(wrongCa), 10_000, 'a refused attempt from each');
  t.equal(noCert.uplink.isConnected(), false, 'broker refuses a client without a certificate');
  t.match(noCert.uplink.state().lastError ?? '', /alert certificate required/, 'the attempt failed in the TLS handshake');
  await waitFor(() => /peer did not return a certificate/.test(broker.log()), 5000, 'the broker logging the refused handshake').catch((err) => t.fail(`${String(err)}: broker log:\n${broker.log()}`));
  t.equal(wrongCa.uplink.isConnected(), false, 'gateway refuses a broker its CA did not sign');
  t.match(wrongCa.uplink.state().lastError ?? '', /unable to get local issuer certificate|self.signed certificate in certificate chain/, "the gateway could not verify the broker's certificate");

  const missing = await startGateway({ gateway: { id: 'missing' }, uplink: { url, reconnectMinMs: 100, tls: { ca: '/nonexistent/ca.pem' } } });
  t.teardown(() => missing.stop());
  await waitFor(() => failedOnce(missing) && missing.uplink.state().failures >= 2, 5000, 'the attempt with a missing CA file, and its retry');
  t.equal(missing.uplink.isConnected(), false);
  t.match(missing.uplink.state().lastError ?? '', /cannot prepare connection: .*ENOENT/, 'a missing TLS file is a clear, retried error, not a crash');
});
