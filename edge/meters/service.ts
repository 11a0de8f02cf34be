// The meters service: builds one BusRunner per configured line, turns their readings
// and state changes into outbox records and bus events, counts everything for
// Prometheus, and offers the MetersApi to the console and the commands.
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Clock } from '../clock.js';
import type { EventBus } from '../bus.js';
import type { Outbox } from '../outbox/outbox.js';
import type { Metrics } from '../observability/metrics.js';
import { SerialLine, TcpLine, interFrameSilenceMs, type Line } from '../../drivers/serial/line.js';
import { Transactor, TransactionTimeout, defaultGuardMs } from '../../drivers/serial/transactor.js';
import { hex } from '../../drivers/modbus/codec.js';
import { modbusFraming, meterConfigWarnings, type MetersConfig, type MeterBusConfig } from './schema.js';
import type { Profile } from './profiles.js';
import { BusRunner, type DeviceRuntime, type ReadingEvent } from './scheduler.js';
import { ModbusProtocol, Dlt645Protocol, Cjt188Protocol, MixedProtocol, ReadError, type BusProtocol } from './protocols.js';
import { ModbusError } from '../../drivers/modbus/client.js';
import { buildSimulatedBus, type SimulatedBus, type SimulatedValueFn } from './simulated.js';
import { Reporter } from './reporter.js';
import type { MetersApi, MeterBusInfo, MeterDeviceInfo, MeterDeviceStatus, MeterPointValue, RawPollRequest, RawPollResult, ScanResult } from './api.js';

export class MeterNotFound extends Error {
  readonly code = 'unknown_device';
}

/** A bus id that does not exist. */
export class BusNotFound extends Error {
  readonly code = 'unknown_bus';
}

/** The operation does not exist for the bus's protocol (meter.timesync on a Modbus or CJ/T 188 bus). */
export class NotSupportedError extends Error {
  readonly code = 'not_supported';
}

export interface MetersServiceOptions {
  config: MetersConfig;
  profiles: ReadonlyMap<string, Profile>;
  clock: Clock;
  log: Logger;
  bus: EventBus;
  outbox: Outbox;
  metrics?: Metrics;
  /** Bench/tests: plan without coalescing. */
  coalesce?: boolean;
  /** Bench/tests: values of the simulated meters (default: live-looking curves). */
  simulatedValues?: SimulatedValueFn;
}

interface Instruments {
  requests: Counter<'bus' | 'device'>;
  late: Counter<'bus' | 'device'>;
  suspect: Counter<'bus' | 'device'>;
  errors: Counter<'bus' | 'device' | 'kind'>;
  skipped: Counter<'bus' | 'device'>;
  online: Gauge<'bus' | 'device'>;
  latency: Histogram<'bus'>;
}

export class MetersService implements MetersApi {
  readonly runners = new Map<string, BusRunner>();
  readonly simulated = new Map<string, SimulatedBus>();
  private readonly reporter: Reporter;
  private timeSyncTimer: NodeJS.Timeout | undefined;
  private readonly inst: Instruments | undefined;
  /** Records the outbox refused (disk full, closed); counted for health. */
  appendFailures = 0;

  constructor(private readonly o: MetersServiceOptions) {
    this.reporter = new Reporter(o.config.fullReportIntervalS * 1000);
    if (o.metrics) this.inst = this.instruments(o.metrics);
    for (const b of o.config.buses) {
      const line = this.lineFor(b);
      const protocol = this.protocolFor(b, line);
      const runner = new BusRunner({
        bus: b,
        line,
        protocol,
        profiles: o.profiles,
        clock: o.clock,
        log: o.log,
        ...(o.coalesce !== undefined ? { coalesce: o.coalesce } : {}),
        hooks: {
          onReading: (e) => this.onReading(b.id, e),
          onState: (d, state, reason) => this.onState(b.id, d, state, reason),
          onError: (d, kind) => this.inst?.errors.inc({ bus: b.id, device: d.id, kind }),
          onRequest: (d, latency) => {
            this.inst?.requests.inc({ bus: b.id, device: d.id });
            if (latency !== undefined) this.inst?.latency.observe({ bus: b.id }, latency / 1000);
          },
          onSkipped: (d, n) => this.inst?.skipped.inc({ bus: b.id, device: d.id }, n),
          onLate: (d, n) => this.inst?.late.inc({ bus: b.id, device: d.id }, n),
          onSuspect: (d) => this.inst?.suspect.inc({ bus: b.id, device: d.id }),
        },
      });
      this.runners.set(b.id, runner);
    }
  }

  private instruments(m: Metrics): Instruments {
    const runners = this.runners;
    return {
      requests: m.counter({ name: 'estate_meter_requests_total', help: 'Requests sent to meters', labelNames: ['bus', 'device'] }),
      errors: m.counter({ name: 'estate_meter_errors_total', help: 'Failed meter requests by kind (timeout, crc, exception, wrong_unit, bad_reply, port; port also counts each poll skipped while the line is down)', labelNames: ['bus', 'device', 'kind'] }),
      late: m.counter({ name: 'estate_meter_late_replies_total', help: 'Replies that arrived after their timeout (during the guard) or answered another request: discarded', labelNames: ['bus', 'device'] }),
      suspect: m.counter({ name: 'estate_meter_suspect_values_total', help: 'Values published with quality suspect (failed the plausibility check of their point kind)', labelNames: ['bus', 'device'] }),
      skipped: m.counter({ name: 'estate_meter_skipped_polls_total', help: 'Polls skipped because the line was busy (never queued)', labelNames: ['bus', 'device'] }),
      online: m.gauge({
        name: 'estate_meter_online',
        help: 'Meter answering (1) or offline (0)',
        labelNames: ['bus', 'device'],
        collect() {
          for (const r of runners.values()) for (const d of r.devices) this.set({ bus: r.id, device: d.id }, d.state === 'online' ? 1 : 0);
        },
      }),
      ...this.lineInstruments(m, runners),
      latency: m.histogram({ name: 'estate_meter_latency_seconds', help: 'Request-to-reply time', labelNames: ['bus'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] }),
    };
  }

  /** Per-line gauges read at scrape time from the runners and their transactors. */
  private lineInstruments(m: Metrics, runners: Map<string, BusRunner>): Record<string, unknown> {
    const each = (fn: (r: BusRunner) => number) =>
      function (this: Gauge<'bus'>) {
        for (const r of runners.values()) this.set({ bus: r.id }, fn(r));
      };
    return {
      lineUp: m.gauge({ name: 'estate_meter_line_up', help: 'Bus line open (1) or down (0): port missing, converter unreachable', labelNames: ['bus'], collect: each((r) => (r.isLineUp ? 1 : 0)) }),
      lineFailures: m.gauge({ name: 'estate_meter_line_open_failures', help: 'Failed attempts to open the bus line since start (monotonic)', labelNames: ['bus'], collect: each((r) => r.stats.lineFailures) }),
      stray: m.gauge({ name: 'estate_meter_stray_bytes', help: 'Bytes received on the line while nothing was asked, since start (monotonic): noise, replies later than their guard', labelNames: ['bus'], collect: each((r) => r.protocol.transactor.stats.strayBytes) }),
      guard: m.gauge({ name: 'estate_meter_guard_seconds', help: 'Line time spent in guards after timeouts, since start (monotonic)', labelNames: ['bus'], collect: each((r) => r.protocol.transactor.stats.guardMs / 1000) }),
    };
  }

  private lineFor(b: MeterBusConfig): Line {
    const serial = { baudRate: b.baudRate, parity: b.parity, stopBits: b.stopBits } as const;
    if (b.transport === 'serial') return new SerialLine(b.port!, serial);
    if (b.transport === 'tcp') return new TcpLine(b.host!, b.tcpPort!, Math.max(1000, b.timeoutMs * 3));
    const sim = buildSimulatedBus(b, this.o.profiles, { now: () => this.o.clock.now(), ...(this.o.simulatedValues ? { value: this.o.simulatedValues } : {}) });
    this.simulated.set(b.id, sim);
    return sim.endpoint;
  }

  private protocolFor(b: MeterBusConfig, line: Line): BusProtocol {
    const now = () => this.o.clock.now();
    // Inter-frame silence: 3.5 characters (from the line) plus the configured extra delay.
    // Guard after a timeout: from the bus's serial settings also over TCP (a transparent
    // converter's RS-485 side runs at baudRate); none where MBAP transaction ids match replies.
    const mbap = modbusFraming(b) === 'tcp';
    const serial = { baudRate: b.baudRate, parity: b.parity, stopBits: b.stopBits } as const;
    const guardMs = b.replyGuardMs ?? (mbap ? 0 : (timeoutMs: number) => defaultGuardMs(timeoutMs, serial));
    const tx = new Transactor(line, { silenceMs: (line.serial ? interFrameSilenceMs(line.serial) : 0) + b.interFrameDelayMs, guardMs });
    if (b.protocol === 'modbus') return new ModbusProtocol(tx, modbusFraming(b), now);
    if (b.protocol === 'dlt645') return new Dlt645Protocol(tx, now);
    if (b.protocol === 'mixed') return new MixedProtocol(tx, now);
    return new Cjt188Protocol(tx, now);
  }

  start(): void {
    for (const w of meterConfigWarnings(this.o.config)) this.o.log.warn(w);
    for (const r of this.runners.values()) r.start();
    const h = this.o.config.timeSyncIntervalH;
    if (h > 0 && [...this.runners.values()].some((r) => r.protocol instanceof Dlt645Protocol || r.protocol instanceof MixedProtocol)) {
      // First sync shortly after start (once the clock is trusted), then on the schedule.
      const run = () => {
        if (!this.o.clock.synced()) {
          this.o.log.warn('DL/T 645 time sync skipped: the gateway clock is not synchronised');
          return;
        }
        this.timeSync().catch((err) => this.o.log.warn({ err: String(err) }, 'scheduled DL/T 645 time sync failed'));
      };
      setTimeout(run, 30_000).unref();
      this.timeSyncTimer = setInterval(run, h * 3_600_000).unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timeSyncTimer) clearInterval(this.timeSyncTimer);
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    for (const s of this.simulated.values()) s.stop();
  }

  private append(rec: Parameters<Outbox['append']>[0]): void {
    this.o.outbox.append(rec).catch((err) => {
      this.appendFailures++;
      this.o.log.warn({ err: String(err), type: rec.type }, 'meter record not stored');
    });
  }

  private onReading(busId: string, e: ReadingEvent): void {
    const d = e.device;
    const now = this.o.clock.now();
    const decision = this.reporter.decide(e, now);
    if (decision.points.length) {
      this.append({
        stream: 'telemetry',
        type: 'meter.reading',
        ts: e.values[0]?.at ?? now,
        data: { bus: busId, device: d.id, profile: d.profile.id, full: decision.full, points: decision.points },
      });
    }
    this.o.bus.emit('meter.reading', { bus: busId, device: d.id, values: e.values.map((v) => toPoint(v)) });
  }

  private onState(busId: string, d: DeviceRuntime, state: 'online' | 'offline', reason: string): void {
    const at = this.o.clock.now();
    this.append({ stream: 'event', type: 'meter.device', ts: at, data: { bus: busId, device: d.id, online: state === 'online', reason } });
    this.o.bus.emit('meter.device', { bus: busId, device: d.id, online: state === 'online', reason, at });
  }

  // ---- MetersApi ---------------------------------------------------------------

  private find(deviceId: string): { runner: BusRunner; device: DeviceRuntime } {
    for (const runner of this.runners.values()) {
      const device = runner.device(deviceId);
      if (device) return { runner, device };
    }
    throw new MeterNotFound(`no meter "${deviceId}"`);
  }

  runner(busId: string): BusRunner {
    const r = this.runners.get(busId);
    if (!r) throw new BusNotFound(`no bus "${busId}" (buses: ${[...this.runners.keys()].join(', ') || 'none'})`);
    return r;
  }

  buses(): MeterBusInfo[] {
    return this.o.config.buses.map((b) => {
      const r = this.runners.get(b.id)!;
      const tx = r.protocol.transactor.stats;
      return {
        id: b.id,
        protocol: b.protocol,
        transport: b.transport,
        line: r.line.description,
        lineUp: r.isLineUp,
        ...(r.lineError ? { lineError: r.lineError } : {}),
        devices: r.devices.length,
        online: r.devices.filter((d) => d.state === 'online').length,
        transactions: r.stats.transactions,
        skippedPolls: r.stats.skipped,
        lateReplies: tx.lateReplies,
        strayBytes: tx.strayBytes,
        guards: tx.guards,
        guardMs: Math.round(tx.guardMs),
        lineFailures: r.stats.lineFailures,
      };
    });
  }

  private info(r: BusRunner, d: DeviceRuntime): MeterDeviceInfo {
    return {
      id: d.id,
      ...(d.cfg.name ? { name: d.cfg.name } : {}),
      bus: r.id,
      profile: d.profile.id,
      profileName: d.profile.name,
      address: String(d.target.address),
      pollIntervalMs: d.intervalMs,
      state: d.state,
      stateSince: d.stateSince,
      ...(d.lastSuccessAt ? { lastSuccessAt: d.lastSuccessAt } : {}),
      ...(d.lastError ? { lastError: { ...d.lastError } } : {}),
    };
  }

  devices(bus?: string): MeterDeviceInfo[] {
    const out: MeterDeviceInfo[] = [];
    for (const r of this.runners.values()) if (!bus || r.id === bus) for (const d of r.devices) out.push(this.info(r, d));
    return out;
  }

  status(deviceId: string): MeterDeviceStatus | undefined {
    let f;
    try {
      f = this.find(deviceId);
    } catch {
      return undefined;
    }
    const d = f.device;
    return {
      ...this.info(f.runner, d),
      values: [...d.latest].map(([name, v]) => ({ name, ...v })),
      counters: structuredClone(d.counters),
    };
  }

  async readNow(deviceId: string, point?: string): Promise<MeterPointValue[]> {
    const { runner } = this.find(deviceId);
    const values = await runner.readNow(deviceId, point);
    return values.map(toPoint);
  }

  private modbusDevice(deviceId: string): { runner: BusRunner; device: DeviceRuntime; protocol: ModbusProtocol } {
    const { runner, device } = this.find(deviceId);
    if (!(runner.protocol instanceof ModbusProtocol)) throw new NotSupportedError(`meter ${deviceId} is on bus ${runner.id}, which is not a Modbus bus: coils need Modbus`);
    return { runner, device, protocol: runner.protocol };
  }

  private busTimeout(runner: BusRunner): number {
    return this.o.config.buses.find((b) => b.id === runner.id)!.timeoutMs;
  }

  async writeCoils(deviceId: string, coil: number, values: readonly boolean[], opts: { urgent?: boolean; timeoutMs?: number } = {}): Promise<{ latencyMs: number }> {
    const { runner, device, protocol } = this.modbusDevice(deviceId);
    const timeoutMs = opts.timeoutMs ?? this.busTimeout(runner);
    return runner.exclusive(
      async () => {
        try {
          return await protocol.client.writeCoils(Number(device.target.address), coil, values, timeoutMs);
        } catch (err) {
          if (err instanceof ModbusError) throw new ReadError(err.kind, err.message, err.exceptionCode);
          throw err;
        }
      },
      { urgent: opts.urgent ?? false },
    );
  }

  async readCoils(deviceId: string, coil: number, count: number, opts: { urgent?: boolean; timeoutMs?: number } = {}): Promise<boolean[]> {
    const { runner, device, protocol } = this.modbusDevice(deviceId);
    const timeoutMs = opts.timeoutMs ?? this.busTimeout(runner);
    return runner.exclusive(
      async () => {
        try {
          const r = await protocol.client.read(Number(device.target.address), 1, coil, count, timeoutMs);
          return Array.from({ length: count }, (_, i) => ((r.bytes[i >> 3]! >> (i & 7)) & 1) === 1);
        } catch (err) {
          if (err instanceof ModbusError) throw new ReadError(err.kind, err.message, err.exceptionCode);
          throw err;
        }
      },
      { urgent: opts.urgent ?? false },
    );
  }

  async scan(busId: string, opts: { from?: number; to?: number; timeoutMs?: number } = {}): Promise<ScanResult> {
    const r = this.runner(busId);
    const bus = this.o.config.buses.find((b) => b.id === busId)!;
    const started = performance.now();
    let addrs: Array<number | string | undefined>;
    if (bus.protocol === 'modbus') {
      const from = opts.from ?? 1;
      const to = opts.to ?? 247;
      addrs = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
    } else if (bus.protocol === 'mixed') {
      addrs = r.devices.map((d) => d.target.address);
    } else {
      // Read-address with the wildcard answers cleanly only with one meter on the line;
      // configured addresses are probed individually so a populated bus still lists them.
      addrs = [undefined, ...r.devices.map((d) => d.target.address)];
    }
    const timeoutMs = opts.timeoutMs ?? Math.min(bus.timeoutMs, 100);
    const hits = await r.scan(addrs, timeoutMs);
    const seen = new Set<string>();
    const found = hits.filter((h) => {
      const k = String(h.address);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    return { bus: busId, found, probed: addrs.length, durationMs: Math.round(performance.now() - started) };
  }

  async rawPoll(busId: string, req: RawPollRequest): Promise<RawPollResult> {
    const r = this.runner(busId);
    const fmt = (frames: Array<{ dir: 'tx' | 'rx'; bytes: Buffer; at: number }>) => frames.map((f) => ({ dir: f.dir, hex: hex(f.bytes), at: f.at }));
    if ('device' in req) {
      const d = r.device(req.device);
      if (!d) throw new MeterNotFound(`no meter "${req.device}" on bus ${busId}`);
      const out = await r.withTap(() => r.readRaw(d, req.point));
      return { frames: fmt(out.frames), ...(out.result ? { values: out.result.map(toPoint) } : {}), ...(out.error ? { error: out.error } : {}) };
    }
    const bytes = Buffer.from(req.requestHex.replace(/[\s:]/g, ''), 'hex');
    if (bytes.length === 0 || bytes.length > 256 || !/^[0-9a-fA-F\s:]+$/.test(req.requestHex)) throw new Error('requestHex must be 1–256 bytes of hex');
    const timeoutMs = Math.min(5000, Math.max(20, req.timeoutMs ?? 300));
    const out = await r.withTap(async () => {
      // Collect everything that comes back until the timeout: the technician reads it.
      try {
        await r.protocol.transactor.request(bytes, () => ({ kind: 'need-more', skip: 0 }), timeoutMs);
      } catch (err) {
        if (!(err instanceof TransactionTimeout)) throw err;
      }
      return undefined;
    });
    return { frames: fmt(out.frames), ...(out.error ? { error: out.error } : {}) };
  }

  async timeSync(busId?: string): Promise<Array<{ bus: string; frameHex: string; at: number }>> {
    const speaksDlt = (r: BusRunner) => r.protocol instanceof Dlt645Protocol || r.protocol instanceof MixedProtocol;
    if (busId) {
      const r = this.runner(busId);
      if (!speaksDlt(r)) {
        const proto = this.o.config.buses.find((b) => b.id === busId)!.protocol;
        throw new NotSupportedError(`bus ${busId} speaks ${proto}: time sync is a DL/T 645 broadcast (08H), for dlt645 and mixed buses only`);
      }
    }
    const targets = [...this.runners.values()].filter((r) => (!busId || r.id === busId) && speaksDlt(r));
    if (targets.length === 0) throw new NotSupportedError('no DL/T 645 bus on this gateway: time sync is a DL/T 645 broadcast (08H)');
    const out: Array<{ bus: string; frameHex: string; at: number }> = [];
    for (const r of targets) {
      const dltp = r.protocol instanceof MixedProtocol ? r.protocol.dlt645 : (r.protocol as Dlt645Protocol);
      const frame = await r.exclusive(() => dltp.timeSync(new Date(this.o.clock.now())));
      out.push({ bus: r.id, frameHex: hex(frame), at: this.o.clock.now() });
      this.o.log.info({ bus: r.id }, 'DL/T 645 broadcast time sent');
    }
    return out;
  }

  health(): { ok: boolean; message?: string; detail: Record<string, unknown> } {
    const buses = this.buses();
    const down = buses.filter((b) => !b.lineUp);
    const offline = this.devices().filter((d) => d.state === 'offline');
    const parts: string[] = [];
    if (down.length) parts.push(`line down: ${down.map((b) => `${b.id} (${b.lineError ?? 'opening'})`).join(', ')}`);
    if (offline.length)
      parts.push(
        `${offline.length} meter(s) offline: ${offline
          .slice(0, 5)
          .map((d) => d.id)
          .join(', ')}${offline.length > 5 ? '…' : ''}`,
      );
    return { ok: down.length === 0 && offline.length === 0, ...(parts.length ? { message: parts.join('; ') } : {}), detail: { buses } };
  }
}

function toPoint(v: ReadingEvent['values'][number]): MeterPointValue {
  return { name: v.point.name, value: v.value ?? null, unit: v.point.unit, kind: v.point.kind, quality: v.quality, ts: v.at };
}
