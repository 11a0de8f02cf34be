// Fleet tool (issue 18 part 4): `npm run fleet -- list|exec NAME [--args JSON] ...`.
// Broker credentials come from FLEET_MQTT_USERNAME / FLEET_MQTT_PASSWORD and are never printed.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FleetClient } from './lib/fleet/client.js';
import { type JobRow, rollout } from './lib/fleet/rollout.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    broker: { type: 'string', default: process.env.FLEET_MQTT_URL ?? 'mqtt://127.0.0.1:1883' },
    ca: { type: 'string' },
    prefix: { type: 'string', default: 'estate' },
    site: { type: 'string', default: '*' },
    gateway: { type: 'string', default: '*' },
    batch: { type: 'string', default: '5' },
    args: { type: 'string', default: '{}' },
    'timeout-s': { type: 'string', default: '60' },
    json: { type: 'boolean', default: false },
  },
});

function table(rows: readonly JobRow[]): string {
  return rows.map((r) => `${r.batch === 0 ? 'canary' : `batch ${r.batch}`}\t${r.site}/${r.gateway}\t${r.state}${r.detail ? `\t${r.detail}` : ''}`).join('\n');
}

async function main(): Promise<number> {
  const [cmd, name] = positionals;
  const f = await FleetClient.connect(values.broker, values.prefix, values.ca ? { ca: readFileSync(values.ca) } : {});
  try {
    const gws = await f.list(values.site, values.gateway);
    if (cmd === 'list') {
      if (values.json) console.log(JSON.stringify(gws));
      else for (const g of gws) console.log([g.site, g.gateway, g.state, g.version ?? '-', g.configRevision ?? '-', g.uptimeS ?? '-', g.ts ? new Date(g.ts).toISOString() : '-'].join('\t'));
      return 0;
    }
    if (cmd === 'exec' && name) {
      const args = JSON.parse(values.args) as Record<string, unknown>;
      const targets = gws.filter((g) => g.state === 'online');
      const tty = process.stdout.isTTY && !values.json;
      let last = '';
      const rep = await rollout(targets, {
        batch: Number(values.batch),
        changeKey: `exec\n${name}\n${JSON.stringify(args)}`,
        runStep: (g, id) => f.exec(g, id, name, args, Number(values['timeout-s']) * 1000),
        onChange: (rows) => {
          if (values.json) return;
          const s = table(rows);
          if (tty) process.stdout.write(`\x1b[H\x1b[2J${s}\n`);
          else if (s !== last) console.log(`--\n${s}`);
          last = s;
        },
      });
      if (values.json) console.log(JSON.stringify(rep));
      else if (rep.halted) console.error(`halted at ${rep.haltedAt?.site}/${rep.haltedAt?.gateway}; ${rep.rows.filter((r) => r.state === 'untouched').length} untouched`);
      return rep.halted ? 1 : 0;
    }
    console.error('usage: fleet list | fleet exec NAME [--args JSON] [--site GLOB --gateway GLOB --batch N --json]');
    return 2;
  } finally {
    await f.close();
  }
}

main().then(
  (c) => process.exit(c),
  (e) => {
    console.error(`fleet: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  },
);
