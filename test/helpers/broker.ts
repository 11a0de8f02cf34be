// A real Mosquitto broker (Debian package) on a free loopback port, started per test
// file. Stop/start keep the port so a test can take the broker away and bring it back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort } from './ports.js';

const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

export class Broker {
  private proc: ChildProcess | undefined;
  private stderr = '';
  readonly dir = mkdtempSync(join(tmpdir(), 'ee-broker-'));
  constructor(
    readonly port: number,
    private readonly extraConf = '',
  ) {}

  static async start(extraConf = ''): Promise<Broker> {
    const b = new Broker(await freePort(), extraConf);
    await b.start();
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!MOSQUITTO) throw new Error('mosquitto is not installed (apt-get install mosquitto)');
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${this.port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 100000\n${this.extraConf}\n`);
    this.proc = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    this.proc.stderr!.on('data', (d) => ((err += d), (this.stderr += d)));
    for (let i = 0; i < 100; i++) {
      if (await canConnect(this.port)) return;
      if (this.proc.exitCode !== null) throw new Error(`mosquitto exited: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen on ${this.port}: ${err}`);
  }

  /** The broker's pid while it runs (for CPU figures). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** What mosquitto has logged (its stderr) since this Broker was made, across restarts. */
  log(): string {
    return this.stderr;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await done;
    this.proc = undefined;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
