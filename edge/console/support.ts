// The support bundle: one .tar.gz a technician downloads from the System page and sends
// to the support line. It holds what a remote diagnosis needs — the log tail with dates,
// the doctor's report, the configuration with every secret masked, the metrics, the
// versions and health, the live events without personal data, and for each meter bus
// the frames of one fresh request — and nothing personal or secret: no people, no
// access decisions, no face data, no password, key or token (masked as in the config view).
//
// The archive is written with tar-stream (already in the dependency tree through
// prebuild-install, a small streaming tar writer) behind packTarGz() below, the one place
// that knows it.
import { gzipSync } from 'node:zlib';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { arch, hostname, platform, release, uptime } from 'node:os';
import { stringify } from 'yaml';
import { requireCjs } from '../cjs.js';
import { redactedConfig } from '../config/load.js';
import { runDoctor, formatReport } from '../doctor.js';
import { systemStats } from '../observability/system.js';
import type { MetersApi } from '../meters/api.js';
import type { ConsoleDeps } from './server.js';
import { eventAllowed, addresses, modelFiles } from './routes/status.js';

interface TarPack {
  entry(header: { name: string; size: number; mtime: Date; mode: number }, body: Buffer, cb: (err?: Error | null) => void): void;
  finalize(): void;
  on(ev: 'data', f: (c: Buffer) => void): void;
  on(ev: 'end', f: () => void): void;
  on(ev: 'error', f: (e: Error) => void): void;
}
const tar = requireCjs('tar-stream') as { pack(): TarPack };

export interface BundleFile {
  name: string;
  content: string | Buffer;
}

/** A gzipped tar of the files (regular files, mode 0644, all with the time `at`). */
export function packTarGz(files: readonly BundleFile[], at: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c) => chunks.push(c));
    pack.on('error', reject);
    pack.on('end', () => resolve(gzipSync(Buffer.concat(chunks), { level: 6 })));
    const next = (i: number) => {
      if (i === files.length) return pack.finalize();
      const f = files[i]!;
      const body = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content, 'utf8');
      pack.entry({ name: f.name, size: body.length, mtime: new Date(at), mode: 0o644 }, body, (err) => (err ? reject(err) : next(i + 1)));
    };
    next(0);
  });
}

const DOCTOR_TIMEOUT_MS = 3000;
const POLL_TIMEOUT_MS = 2000;

/** Each step is caught on its own: a failing part is written as an error note, the rest still comes. */
async function part(name: string, f: () => Promise<string> | string): Promise<BundleFile> {
  try {
    return { name, content: await f() };
  } catch (err) {
    return { name: `${name}.error.txt`, content: `could not collect ${name}: ${(err as Error)?.message ?? String(err)}\n` };
  }
}

export async function supportBundle(d: ConsoleDeps, user: string): Promise<{ name: string; body: Buffer; files: string[] }> {
  const { ctx } = d;
  const at = ctx.clock.now();
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace(/\..*$/, 'Z');
  const dir = `estate-edge-support-${ctx.config.site.id}-${ctx.config.gateway.id}-${stamp}`;
  const meters: MetersApi | undefined = ctx.services.get('meters');

  const files = await Promise.all([
    part('versions.json', () =>
      JSON.stringify(
        {
          version: ctx.version,
          node: process.version,
          versions: process.versions,
          platform: platform(),
          arch: arch(),
          kernel: release(),
          hostname: hostname(),
          hostUptimeS: Math.round(uptime()),
          serviceUptimeS: Math.round(process.uptime()),
          configSource: ctx.configSource,
          configRevision: ctx.configRevision,
          clockSynced: ctx.clock.synced(),
          time: new Date(at).toISOString(),
        },
        null,
        2,
      ),
    ),
    part('health.json', () => JSON.stringify({ modules: ctx.healthReport(), system: systemStats(ctx.dataDir), addresses: addresses() }, null, 2)),
    part('models.json', async () => JSON.stringify(await modelFiles(), null, 2)),
    part('config.yaml', () => (d.configFile ? d.configFile.masked().yaml : stringify(redactedConfig(ctx.config)))),
    part(
      'logs.txt',
      () =>
        d.logs
          .tail({ minLevel: 'trace', limit: 10_000 })
          .map((l) => {
            const { time, level, msg, ...rest } = l;
            const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
            return `${time} ${String(level).toUpperCase().padEnd(5)} ${msg}${extra}`;
          })
          .join('\n') + '\n',
    ),
    part('metrics.txt', () => ctx.metrics.text()),
    part('events.json', () =>
      JSON.stringify(
        d.live.recent((e) => eventAllowed('viewer', e.type), 300),
        null,
        2,
      ),
    ),
    part('doctor.txt', async () => {
      const path = isAbsolute(ctx.configSource) && existsSync(ctx.configSource) ? ctx.configSource : undefined;
      const findings = await runDoctor({
        ...(path ? { configPath: path } : { loaded: { config: ctx.config, source: ctx.configSource, revision: ctx.configRevision, secrets: new Map() } }),
        timeoutMs: DOCTOR_TIMEOUT_MS,
        // The bundle goes to a support line: no setup token in it.
        showSetupToken: false,
      });
      return formatReport(findings, `estate-edge doctor (from the console, ${new Date(at).toISOString()})`);
    }),
    part('bus-frames.json', async () => {
      if (!meters) return JSON.stringify({ note: 'meter reading is not configured on this gateway' }, null, 2);
      const out: Record<string, unknown> = {};
      for (const bus of meters.buses()) {
        const dev = meters.devices(bus.id)[0];
        if (!dev) {
          out[bus.id] = { bus, note: 'no meter on this bus' };
          continue;
        }
        const poll = meters.rawPoll(bus.id, { device: dev.id }).catch((err: Error) => ({ frames: [], error: err.message }));
        const timeout = new Promise<{ frames: []; error: string }>((r) => setTimeout(() => r({ frames: [], error: `no answer within ${POLL_TIMEOUT_MS} ms` }), POLL_TIMEOUT_MS).unref());
        const r = await Promise.race([poll, timeout]);
        out[bus.id] = { bus, device: dev.id, status: meters.status(dev.id), frames: r.frames.map((f) => ({ ...f, time: new Date(f.at).toISOString() })), ...(r.error ? { error: r.error } : {}) };
      }
      return JSON.stringify(out, null, 2);
    }),
  ]);
  const names = files.map((f) => f.name);
  const readme =
    `estate-edge support bundle / 诊断包\n` +
    `site ${ctx.config.site.id}, gateway ${ctx.config.gateway.id}, version ${ctx.version}\n` +
    `made ${new Date(at).toISOString()} by console user ${user}\n\n` +
    `No people, access decisions, face data or secrets are included (secrets are masked as ***).\n` +
    `不含人员、通行记录、人脸数据和密钥（密钥显示为 ***）。\n\n` +
    `versions.json   versions of the service, Node and the OS\n` +
    `health.json     module health, host figures, network addresses\n` +
    `models.json     model files and their hashes\n` +
    `config.yaml     the configuration, secrets masked\n` +
    `logs.txt        the last log lines, with their dates (UTC)\n` +
    `metrics.txt     Prometheus metrics\n` +
    `events.json     recent events (states and counts only)\n` +
    `doctor.txt      the doctor's report\n` +
    `bus-frames.json one fresh request per meter bus, its frames in hex\n` +
    `(*.error.txt: a part that could not be collected, and why)\n\n` +
    `files: ${names.join(', ')}\n`;
  const all = [{ name: 'README.txt', content: readme }, ...files].map((f) => ({ ...f, name: `${dir}/${f.name}` }));
  return { name: `${dir}.tar.gz`, body: await packTarGz(all, at), files: ['README.txt', ...names] };
}
