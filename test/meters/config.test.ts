// Meter bus config: Modbus over TCP needs its framing (defaulted to Modbus TCP on port
// 502), and port 502 with RTU framing loads with a warning that check-config prints.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, ConfigError } from '../../edge/config/load.js';
import { modbusFraming } from '../../edge/meters/schema.js';
import { tempDir } from '../helpers/gateway.js';

const head = `site: { id: estate-1 }\ngateway: { id: gw-1 }\n`;
const bus = (extra: string) => `${head}meters:\n  buses:\n    - { id: conv, protocol: modbus, transport: tcp, host: 127.0.0.1, ${extra}, devices: [{ id: m, profile: eastron-sdm120, address: 1 }] }\n`;

t.test('framing: required on other ports, Modbus TCP by default on 502', async (t) => {
  const err = t.throws(() => parseConfig(bus('tcpPort: 4001'), 'x.yaml')) as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.problems.join('\n'), /meters\.buses\[0\]\.framing: required for Modbus over tcp on port 4001/);
  const on502 = parseConfig(bus('tcpPort: 502'), 'x.yaml');
  t.equal(on502.config.meters.buses[0]!.framing, undefined);
  t.equal(modbusFraming(on502.config.meters.buses[0]!), 'tcp', 'port 502 defaults to Modbus TCP framing');
  t.notOk(on502.warnings, 'no warning');
  const rtu4001 = parseConfig(bus('tcpPort: 4001, framing: rtu'), 'x.yaml');
  t.equal(modbusFraming(rtu4001.config.meters.buses[0]!), 'rtu');
  t.equal(modbusFraming({ transport: 'serial', protocol: 'modbus', framing: 'tcp', tcpPort: 502 }), 'rtu', 'serial lines are RTU');
});

t.test('port 502 with RTU framing: a warning, printed by check-config', async (t) => {
  const text = bus('tcpPort: 502, framing: rtu');
  const loaded = parseConfig(text, 'x.yaml');
  t.match(loaded.warnings ?? [], [/meters\.buses\[0\]\.framing: rtu on port 502, the Modbus TCP port/]);
  const dir = tempDir('ee-cfg-');
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../edge/main.ts'), 'check-config', '--config', file], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `valid (${r.stderr})`);
  t.match(r.stderr, /warning: meters\.buses\[0\]\.framing: rtu on port 502/);
  t.match(r.stdout, /is valid .*with 1 warning/);
});
