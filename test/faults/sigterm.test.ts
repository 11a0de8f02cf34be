// SIGTERM campaign against the service as a process (edge/main.ts, real broker): at
// random moments, many during start-up. Every run exits 0, nothing starts after
// "gateway stopped", no stack trace; the retained status is offline with the reason
// (not the will), and a command sent while it stops is answered.
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { tempDir } from '../helpers/gateway.js';

const TSX = pathToFileURL(join(process.cwd(), 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = ['--import', TSX, join(process.cwd(), 'edge/main.ts')];
const ROUNDS = Number(process.env.EE_SIGTERM_ROUNDS ?? 6);

t.test(`SIGTERM ×${ROUNDS}, during start-up and while running: exit 0, clean order, status says why`, async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const dir = tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `site: { id: s1 }\ngateway: { id: g1, dataDir: ${dir}/data }\nhttp: { enabled: false }\nconsole: { enabled: false }\nlog: { level: info }\nuplink: { url: "${broker.url}", reconnectMinMs: 100 }\n`);
  let duringStartup = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const child = spawn(process.execPath, [...MAIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    // Half the rounds: as soon as the process logs anything (start-up under way).
    const early = round % 2 === 0;
    const end = Date.now() + 60_000;
    while (Date.now() < end && child.exitCode === null && !(early ? /"msg"/.test(out) : /gateway started/.test(out))) await new Promise((r) => setTimeout(r, 5));
    if (!early) await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
    if (!/gateway started/.test(out)) duringStartup++;
    child.kill('SIGTERM');
    const code = await exited;
    t.equal(code, 0, `round ${round} (${early ? 'start-up' : 'running'}): exit 0`);
    const lines = out.split('\n').filter(Boolean);
    const stoppedAt = lines.findIndex((l) => /gateway stopped/.test(l));
    t.ok(stoppedAt >= 0, `round ${round}: "gateway stopped" logged`);
    t.notOk(
      lines.slice(stoppedAt + 1).some((l) => /module started|gateway started/.test(l)),
      `round ${round}: nothing started after "gateway stopped"`,
    );
    // The level is a label (edge/log.ts formatters), e.g. "level":"error".
    t.notMatch(out, /\n\s+at .+:\d+:\d+|"level":("error"|"fatal"|50\b|60\b)/, `round ${round}: no stack trace, no error logged`);
  }
  t.ok(duringStartup >= 1, `${duringStartup} of ${ROUNDS} SIGTERMs landed during start-up`);
  const statuses = platform.raw.filter((m) => m.topic.endsWith('/status')).map((m) => JSON.parse(m.payload.toString()));
  t.notOk(
    statuses.some((s) => s.reason === 'connection lost'),
    `${statuses.length} status messages, none from the will`,
  );
  t.match(statuses.at(-1), { state: 'offline', reason: 'SIGTERM' });
});
