// Fleet tool (issue 18 part 4), for the platform side:
//   npm run fleet -- list | exec NAME | config --patch … | upgrade --tarball … [options]
// Each change goes out as a staged rollout (canary, then batches, halting on the first
// failure) and a live table shows each gateway's job. Broker credentials come from
// FLEET_MQTT_USERNAME / FLEET_MQTT_PASSWORD and are never printed.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { FleetClient, type GatewayStatus } from './lib/fleet/client.js';
import { type JobRow, type Outcome, rollout, type Target } from './lib/fleet/rollout.js';

const USAGE = `usage: fleet <sub-command> [options]
  list                                     gateways from their retained status
  exec NAME [--args JSON] [--timeout-s S]  a command on every selected online gateway
  config (--patch JSON|@FILE | --yaml FILE) [--confirm-within-s S] [--reason TEXT]
  upgrade --tarball FILE [--manifest FILE] (--url URL | --chunked [--chunk-kb N]) [--allow-downgrade] [--timeout-s S]
options: --broker URL --ca FILE --prefix P --site GLOB --gateway GLOB --batch N --canary N --json`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    broker: { type: 'string', default: process.env.FLEET_MQTT_URL ?? 'mqtt://127.0.0.1:1883' },
    ca: { type: 'string' },
    prefix: { type: 'string', default: 'estate' },
    site: { type: 'string', default: '*' },
    gateway: { type: 'string', default: '*' },
    batch: { type: 'string', default: '5' },
    canary: { type: 'string', default: '1' },
    args: { type: 'string', default: '{}' },
    'timeout-s': { type: 'string' },
    patch: { type: 'string' },
    yaml: { type: 'string' },
    'confirm-within-s': { type: 'string', default: '120' },
    reason: { type: 'string' },
    tarball: { type: 'string' },
    manifest: { type: 'string' },
    url: { type: 'string' },
    chunked: { type: 'boolean', default: false },
    'chunk-kb': { type: 'string', default: '256' },
    'allow-downgrade': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

class UsageError extends Error {}

function int(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
}

interface Manifest {
  version: string;
  commit?: string;
  arch?: string;
  sha256: string;
  size: number;
  signature: string;
}

function readManifest(file: string): Manifest {
  const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<Manifest>;
  for (const k of ['version', 'sha256', 'signature'] as const) if (typeof m[k] !== 'string') throw new UsageError(`${file}: no ${k} (a manifest from scripts/sign-release)`);
  if (typeof m.size !== 'number') throw new UsageError(`${file}: no size`);
  return m as Manifest;
}

/** The step of each sub-command, and the change's identity (the same change re-run sends the same command ids). */
function plan(cmd: string, name: string | undefined, f: FleetClient, gws: Map<string, GatewayStatus>): { changeKey: string; runStep: (t: Target, id: string) => Promise<Outcome>; extra?: (r: JobRow) => string } {
  if (cmd === 'exec') {
    if (!name) throw new UsageError('exec needs a command NAME');
    const args = JSON.parse(values.args) as Record<string, unknown>;
    const timeoutMs = int('timeout-s', values['timeout-s'] ?? '60', 1) * 1000;
    return { changeKey: `exec\n${name}\n${JSON.stringify(args)}`, runStep: (g, id) => f.exec(g, id, name, args, timeoutMs) };
  }
  if (cmd === 'config') {
    if (!values.patch === !values.yaml) throw new UsageError('config needs exactly one of --patch JSON|@FILE and --yaml FILE');
    const body = values.yaml ? { yaml: readFileSync(values.yaml, 'utf8') } : { patch: JSON.parse(values.patch!.startsWith('@') ? readFileSync(values.patch!.slice(1), 'utf8') : values.patch!) as unknown };
    const confirmWithinS = int('confirm-within-s', values['confirm-within-s'], 2);
    // The box restarts, waits up to confirmWithinS, and if it rolls back restarts again and
    // needs the broker back to say so: allow for both restarts beyond the window.
    const timeoutMs = int('timeout-s', values['timeout-s'] ?? String(confirmWithinS + 90), 1) * 1000;
    return {
      changeKey: `config\n${JSON.stringify(body)}\n${confirmWithinS}\n${values.reason ?? ''}`,
      runStep: async (g, id) => {
        const base = gws.get(`${g.site}/${g.gateway}`)?.configRevision;
        if (!base) return { state: 'failed', detail: 'its status gives no configRevision' };
        return f.applyConfig(g, id, { ...body, baseRevision: base, confirmWithinS, ...(values.reason ? { reason: values.reason } : {}) }, timeoutMs);
      },
    };
  }
  if (cmd === 'upgrade') {
    if (!values.tarball) throw new UsageError('upgrade needs --tarball FILE');
    if (!values.url === !values.chunked) throw new UsageError('upgrade needs exactly one of --url URL (the boxes download over HTTPS) and --chunked (sent over MQTT)');
    const m = readManifest(values.manifest ?? `${values.tarball}.manifest.json`);
    const tarball = values.chunked ? readFileSync(values.tarball) : undefined;
    if (tarball && tarball.length !== m.size) throw new UsageError(`${values.tarball} is ${tarball.length} bytes, the manifest signs ${m.size}`);
    // A base URL gets the tarball's own name appended.
    const url = values.url && (values.url.endsWith('.tar.gz') ? values.url : `${values.url.replace(/\/$/, '')}/${basename(values.tarball)}`);
    const args: Record<string, unknown> = {
      version: m.version,
      sha256: m.sha256,
      size: m.size,
      signature: m.signature,
      ...(m.arch ? { arch: m.arch } : {}),
      ...(url ? { url } : { chunked: true }),
      ...(values['allow-downgrade'] ? { allowDowngrade: true } : {}),
    };
    const timeoutMs = int('timeout-s', values['timeout-s'] ?? '600', 1) * 1000;
    const chunkBytes = int('chunk-kb', values['chunk-kb'], 1) * 1024;
    return {
      changeKey: `upgrade\n${m.version}\n${m.sha256}\n${url ?? 'chunked'}`,
      runStep: async (g, id) => {
        // A re-run after the tool stopped: a box already on the version is done.
        if (gws.get(`${g.site}/${g.gateway}`)?.version === m.version) return { state: 'done', detail: `already on ${m.version}` };
        return f.upgrade(g, id, args, { ...(tarball ? { tarball } : {}), chunkBytes, timeoutMs });
      },
      extra: (r) => {
        if (r.state !== 'running') return '';
        const p = f.progressOf(r.commandId);
        return p ? `${p.phase} ${p.pct}%` : '';
      },
    };
  }
  throw new UsageError(`unknown sub-command ${cmd}`);
}

function table(rows: readonly JobRow[], extra?: (r: JobRow) => string): string {
  return rows
    .map((r) => {
      const more = r.detail ?? extra?.(r) ?? '';
      return `${r.batch === 0 ? 'canary ' : `batch ${r.batch}`}\t${r.site}/${r.gateway}\t${r.state}${more ? `\t${more}` : ''}`;
    })
    .join('\n');
}

async function main(): Promise<number> {
  const [cmd, name] = positionals;
  if (!cmd) throw new UsageError('no sub-command');
  const batch = int('batch', values.batch, 1);
  const canary = int('canary', values.canary, 0);
  const f = await FleetClient.connect(values.broker, values.prefix, values.ca ? { ca: readFileSync(values.ca) } : {});
  try {
    const gws = await f.list(values.site, values.gateway);
    if (cmd === 'list') {
      if (values.json) console.log(JSON.stringify(gws));
      else for (const g of gws) console.log([g.site, g.gateway, g.state, g.version ?? '-', g.configRevision ?? '-', g.uptimeS ?? '-', g.ts ? new Date(g.ts).toISOString() : '-'].join('\t'));
      return 0;
    }
    const byKey = new Map(gws.map((g) => [`${g.site}/${g.gateway}`, g]));
    const p = plan(cmd, name, f, byKey);
    const targets = gws.filter((g) => g.state === 'online');
    const skipped = gws.filter((g) => g.state !== 'online');
    if (skipped.length && !values.json) console.error(`not online, left out: ${skipped.map((g) => `${g.site}/${g.gateway} (${g.state})`).join(', ')}`);
    if (targets.length === 0) {
      console.error('no online gateway matches the selector');
      return 1;
    }
    const tty = process.stdout.isTTY && !values.json;
    let last = '';
    let rows: readonly JobRow[] = [];
    const draw = () => {
      if (values.json || rows.length === 0) return;
      const s = table(rows, p.extra);
      if (tty) process.stdout.write(`\x1b[H\x1b[2J${s}\n`);
      else if (s !== last) console.log(`--\n${s}`);
      last = s;
    };
    // Progress (download %, chunks) changes without a state change: redraw a live table.
    const timer = tty ? setInterval(draw, 500) : undefined;
    const t0 = Date.now();
    const rep = await rollout(targets, {
      batch,
      canary,
      changeKey: p.changeKey,
      runStep: p.runStep,
      onChange: (r) => {
        rows = r;
        draw();
      },
    });
    if (timer) clearInterval(timer);
    const seconds = (Date.now() - t0) / 1000;
    if (values.json) console.log(JSON.stringify({ ...rep, seconds, skipped: skipped.map((g) => ({ site: g.site, gateway: g.gateway, state: g.state })), wire: Object.fromEntries(f.wire) }));
    else {
      const counts = new Map<string, number>();
      for (const r of rep.rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
      console.log(`${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')} in ${seconds.toFixed(1)} s`);
      if (rep.halted) console.error(`halted at ${rep.haltedAt?.site}/${rep.haltedAt?.gateway}; ${counts.get('untouched') ?? 0} untouched`);
    }
    return rep.halted ? 1 : 0;
  } finally {
    await f.close();
  }
}

main().then(
  (c) => process.exit(c),
  (e) => {
    console.error(`fleet: ${e instanceof Error ? e.message : String(e)}`);
    if (e instanceof UsageError) console.error(USAGE);
    process.exit(2);
  },
);
