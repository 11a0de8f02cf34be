// The fleet commands from the technician console: each is refused below its declared
// role exactly as the console refuses other commands (403), and runs for that role. The
// console's config.apply of a patch writes through the same code path (a pending marker
// with the console as source, the history entry), and gateway.restart is only for admins.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startConsoleGateway, withAccounts } from '../console/helpers.js';

t.test('roles: viewer < technician < admin, as declared', async (t) => {
  const g = await startConsoleGateway();
  t.teardown(() => g.stop());
  const { admin, tech, viewer } = await withAccounts(g);
  const cases: Array<[string, Record<string, unknown>, 'viewer' | 'technician' | 'admin']> = [
    ['metrics.get', {}, 'viewer'],
    ['logs.get', { limit: 5 }, 'technician'],
    ['doctor.run', {}, 'technician'],
    ['config.history', {}, 'technician'],
    ['config.apply', { patch: { status: { intervalS: 50 } }, baseRevision: 'x' }, 'admin'],
    ['config.rollback', {}, 'admin'],
    ['gateway.restart', { reason: 'test' }, 'admin'],
  ];
  for (const [name, body, need] of cases) {
    t.equal(g.gateway.commands.roleOf(name), need, `${name} declares ${need}`);
    t.equal(g.gateway.commands.capabilityOf(name), 'fleet');
    const below = need === 'admin' ? tech : need === 'technician' ? viewer : undefined;
    if (below) t.equal((await below.post(`/api/commands/${name}`, body)).status, 403, `${name}: refused below ${need}`);
  }
  t.equal((await viewer.post('/api/commands/metrics.get', {})).status, 200);
  const logs = await tech.post('/api/commands/logs.get', { limit: 5 });
  t.equal(logs.status, 200, JSON.stringify(logs.body));

  const stale = await admin.post('/api/commands/config.apply', { patch: { status: { intervalS: 50 } }, baseRevision: 'x' });
  t.equal(stale.body.error?.code ?? stale.body.code, 'revision_conflict', JSON.stringify(stale.body));
  const rev = g.gateway.info().configRevision as string;
  const ok = await admin.post('/api/commands/config.apply', { patch: { status: { intervalS: 50 } }, baseRevision: rev, reason: 'from the console' });
  t.equal(ok.status, 200, JSON.stringify(ok.body));
  const marker = JSON.parse(readFileSync(`${g.configPath}.apply.json`, 'utf8'));
  t.match(marker, { status: 'pending', source: 'console', user: 'admin', why: 'from the console' });
  const index = JSON.parse(readFileSync(join(g.dir, 'data', 'config-history', 'index.json'), 'utf8'));
  t.match(index.at(-1), { user: 'admin', source: 'console', status: 'pending', reason: 'from the console' });
  await new Promise((r) => setTimeout(r, 700));
  t.equal(g.restarts.length, 1, 'the restart was asked for');
});

t.test('inline { value } secrets: only over TLS and only when the command says allowPlaintextSecrets', async (t) => {
  const { baseConfig } = await import('../console/helpers.js');
  const { tempDir } = await import('../helpers/gateway.js');
  const dir = tempDir('ee-fleet-tls-');
  // An mqtts uplink (nobody listens: only the command's check is under test here).
  const g = await startConsoleGateway({ dir, config: baseConfig(dir, { uplink: { url: 'mqtts://127.0.0.1:1', reconnectMinMs: 100, reconnectMaxMs: 1000 } }) });
  t.teardown(() => g.stop());
  const rev = g.gateway.info().configRevision as string;
  const meta = (id: string) => ({ id, source: 'mqtt' as const, receivedAt: Date.now() });
  const args = { patch: { uplink: { username: 'gw', password: { value: 'lab-password-1' } } }, baseRevision: rev };
  const refused = await g.gateway.commands.execute('config.apply', args, meta('p-1'));
  t.match(refused.result, { ok: false, error: { code: 'plaintext_secret' } }, 'TLS alone is not enough');
  t.match((refused.result as { error: { message: string } }).error.message, /allowPlaintextSecrets/);
  const accepted = await g.gateway.commands.execute('config.apply', { ...args, allowPlaintextSecrets: true }, meta('p-2'));
  t.match(accepted.result, { ok: true, result: { status: 'pending', previousRevision: rev } }, `TLS and the explicit flag: accepted (${JSON.stringify(accepted.result)})`);
  t.notOk(
    g.logLines.some((l) => l.includes('lab-password-1')),
    'and not logged',
  );
});

t.test('config.apply with a whole yaml file: broken YAML is a field error, a good file is pending', async (t) => {
  const g = await startConsoleGateway();
  t.teardown(() => g.stop());
  const rev = g.gateway.info().configRevision as string;
  const before = readFileSync(g.configPath, 'utf8');
  const meta = (id: string) => ({ id, source: 'mqtt' as const, receivedAt: Date.now() });
  const broken = await g.gateway.commands.execute('config.apply', { yaml: 'site: [unclosed', baseRevision: rev }, meta('y-1'));
  t.match(broken.result, { ok: false, error: { code: 'invalid_config' } });
  t.match(JSON.stringify(broken.result), /YAML:/, 'the YAML error is named');
  const same = await g.gateway.commands.execute('config.apply', { yaml: before, baseRevision: rev }, meta('y-2'));
  t.match(same.result, { ok: false, error: { code: 'no_change' } }, 'the same file is no change');
  t.equal(readFileSync(g.configPath, 'utf8'), before, 'nothing written');
  const good = await g.gateway.commands.execute('config.apply', { yaml: `${before}status:\n  intervalS: 77\n`, baseRevision: rev, reason: 'whole file' }, meta('y-3'));
  t.match(good.result, { ok: true, result: { status: 'pending', previousRevision: rev } }, JSON.stringify(good.result));
  t.match(readFileSync(g.configPath, 'utf8'), /intervalS: 77/);
  const busy = await g.gateway.commands.execute('config.apply', { patch: { status: { intervalS: 78 } }, baseRevision: rev }, meta('y-4'));
  t.match(busy.result, { ok: false, error: { code: 'restart_pending' } }, 'a second change waits for the first one');
});
