// A fleet of real boxes for the fleet tool's rehearsal (test/fleet-tool/rehearsal.test.ts)
// and `npm run bench:fleet`: N gateway processes, each a box root laid out as install.sh
// lays it out (A/B releases, `current`, the fleet key), each under a restart loop that does
// what systemd does with the unit (test/upgrade/harness.ts), all on one real Mosquitto.
// Their releases run the production bundle, so twenty restarts at once stay affordable on
// two cores. The tool itself runs as its own process (scripts/fleet.ts), as an operator
// would run it. No assertions here: the callers judge.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { buildBundle } from '../faults/harness.js';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { REPO } from '../../scripts/lib/unit.js';
import { httpsServer, keygen, makeBox, makeRelease, type Manifest, signTarball, Supervisor, tmp } from '../upgrade/harness.js';

export const SITE = 'rh';
export const gatewayId = (i: number) => `gw${String(i + 1).padStart(2, '0')}`;

export interface Box {
  gateway: string;
  base: string;
  sup: Supervisor;
  config: string;
  dataDir: string;
}

export interface GatewayStatusMsg {
  state: string;
  version?: string;
  configRevision?: string;
  at: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Fleet {
  readonly boxes: Box[] = [];
  private constructor(
    readonly broker: Broker,
    readonly platform: Platform,
    readonly https: Awaited<ReturnType<typeof httpsServer>>,
    readonly dist: string,
    readonly keys: { pub: string; key: string },
    readonly bundle: { main: string; remove: () => void },
  ) {}

  /**
   * N boxes on version `baseVersion`, started and online. `extra(i)` adds config lines to box
   * i (meters, doors); `commitTimeoutS` is how long a new release has to prove itself.
   */
  static async start(n: number, o: { baseVersion?: string; extra?: (i: number) => string[]; commitTimeoutS?: number; onlineTimeoutMs?: number } = {}): Promise<Fleet> {
    const bundle = await buildBundle();
    const broker = await Broker.start();
    const platform = await Platform.connect(broker.url, `estate/${SITE}/#`);
    const dist = tmp('ee-fleet-dist-');
    const https = await httpsServer(dist);
    const keys = keygen(tmp('ee-fleet-keys-'));
    const f = new Fleet(broker, platform, https, dist, keys, bundle);
    const base = f.release(o.baseVersion ?? '0.1.0');
    for (let i = 0; i < n; i++) {
      const gateway = gatewayId(i);
      const box = makeBox({ tarball: base.tarball, pub: keys.pub, brokerUrl: broker.url, ca: https.caFile, commitTimeoutS: o.commitTimeoutS ?? 60, site: SITE, gateway, extraYaml: o.extra?.(i) ?? [] });
      f.boxes.push({ gateway, base: `estate/${SITE}/${gateway}`, sup: new Supervisor(box, { maxStarts: 40 }), config: box.config, dataDir: box.dataDir });
    }
    await f.waitOnline(base.manifest.version, o.onlineTimeoutMs ?? 120_000, 'first start');
    return f;
  }

  /** A signed release in the served directory (the bundle as its entry). */
  release(version: string, o: { crash?: boolean; padBytes?: number } = {}): { tarball: string; manifest: Manifest } {
    const tarball = makeRelease(this.dist, { version, bundle: this.bundle.main, ...o });
    return { tarball, manifest: signTarball(tarball, this.keys.key) };
  }

  status(gateway: string): GatewayStatusMsg | undefined {
    const m = this.platform.raw.filter((r) => r.topic === `estate/${SITE}/${gateway}/status`).at(-1);
    if (!m) return undefined;
    try {
      return { ...(JSON.parse(m.payload.toString()) as Omit<GatewayStatusMsg, 'at'>), at: m.at };
    } catch {
      return undefined;
    }
  }

  allOnline(version?: string): boolean {
    return this.boxes.every((b) => {
      const s = this.status(b.gateway);
      return s?.state === 'online' && (version === undefined || s.version === version);
    });
  }

  async waitOnline(version: string | undefined, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.allOnline(version)) {
      if (Date.now() > end) {
        const bad = this.boxes.filter((b) => {
          const s = this.status(b.gateway);
          return !(s?.state === 'online' && (version === undefined || s.version === version));
        });
        throw new Error(`${what}: ${bad.length} of ${this.boxes.length} boxes not online${version ? ` on ${version}` : ''} within ${timeoutMs} ms: ${bad.map((b) => `${b.gateway}=${JSON.stringify(this.status(b.gateway) ?? null)}`).join(', ')}\nlast log of ${bad[0]?.gateway}:\n${bad[0]?.sup.log.slice(-12).join('\n')}`);
      }
      await sleep(100);
    }
  }

  /** Commands the platform side published to a gateway (what the tool sent), in order. */
  commandsTo(gateway: string): Array<{ id: string; name: string; at: number; args: any }> {
    return this.platform.raw
      .filter((r) => r.topic === `estate/${SITE}/${gateway}/cmd`)
      .map((r) => {
        const b = JSON.parse(r.payload.toString()) as { id: string; name: string; args: unknown };
        return { id: b.id, name: b.name, args: b.args, at: r.at };
      });
  }

  async stop(): Promise<void> {
    await Promise.all(this.boxes.map((b) => b.sup.stop()));
    await this.platform.close();
    await this.https.close();
    await this.broker.stop();
    this.bundle.remove();
  }
}

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * scripts/fleet.ts as its own process. Asynchronous on purpose: the HTTPS server the boxes
 * download from lives in this process and must keep serving while the tool runs.
 */
export function runTool(args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ToolRun> {
  const t0 = performance.now();
  const c = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/fleet.ts'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d: Buffer) => (stdout += d));
  c.stderr.on('data', (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => c.kill('SIGKILL'), o.timeoutMs ?? 300_000);
  return new Promise((resolve) =>
    c.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    }),
  );
}
