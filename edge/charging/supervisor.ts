// The charging supervisor: one state machine per port, fed by the port's meter channel
// (meter.reading events of the meters scheduler) and a 250 ms tick, acting on the
// port's relay (a coil written through the same bus scheduler, or a GPIO line).
//
//   idle ──power > startW──▶ charging ──power < taperW for fullAfterS──▶ off (full)
//                               ├──power > maxW for overPowerS──▶ off (over_power, alarm)
//                               ├──longer than maxHours──▶ off (over_time)
//                               └──stop command──▶ off (stop)
//   any ──relay does not follow after the retries / meter offline or silent──▶ fault (alarm, relay off)
//   any port of a pile ──smoke or heat input trips──▶ off (fire, fire alarm): every port at once
//   off / fault ──enable command (no fire on the pile)──▶ idle
//   GPIO-relay ports ──the gateway stops──▶ off (shutdown; Modbus coils keep their state)
//
// The safe state of a relay is off: every cut, fault and fire writes off. Relay writes
// are urgent jobs of the bus scheduler: they go before the next poll and between the
// blocks of a poll in progress, so a fire cut waits for at most one request on the line.
// A write is verified by reading the coil back (FC 01) and retried on failure or mismatch;
// a newer order for the same port supersedes an older one still retrying.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { Clock } from '../clock.js';
import type { EventBus } from '../bus.js';
import type { Outbox, RecordInput } from '../outbox/outbox.js';
import type { Metrics } from '../observability/metrics.js';
import type { MetersApi, MeterPointValue } from '../meters/api.js';
import type { GpioBackend, GpioInput, GpioOutput } from '../../drivers/gpio/types.js';
import { portThresholds, type ChargingConfig, type PileConfig, type PortConfig, type Thresholds } from './schema.js';
import type { ChargingAlarmKind, ChargingApi, ChargingStatus, EndReason, PileStatus, PortState, PortStatus, SessionRecord } from './api.js';

interface Session {
  id: string;
  start: number;
  /** Monotonic ms of the start: the session length (maxHours) is measured on it, so an NTP step of the wall clock neither cuts nor prolongs a session. */
  startMono: number;
  startEnergy: number | undefined;
  lastEnergy: number | undefined;
  integratedKWh: number;
  peakW: number;
  lastSample: { at: number; w: number } | undefined;
}

export interface PortRuntime {
  pile: PileRuntime;
  cfg: PortConfig;
  th: Thresholds;
  state: PortState;
  since: number;
  powerW: number | null;
  readingAt: number | null;
  /** Monotonic ms of the last reading (or of the start): the staleness clock. */
  readingMono: number;
  energy: number | undefined;
  /** The relay state last confirmed (read back, or written for GPIO); null = not known. */
  relayOn: boolean | null;
  /** Bumped by every relay order: an older order still retrying gives up. */
  order: number;
  gpioOut?: GpioOutput;
  session?: Session;
  belowSince?: number;
  overSince?: number;
  lastEnd?: { reason: EndReason; at: number };
  fault?: string;
}

export interface PileRuntime {
  cfg: PileConfig;
  ports: PortRuntime[];
  inputs: Array<{ name: string; active: boolean; gpio?: GpioInput }>;
  fireSince?: number;
}

export interface SupervisorOptions {
  config: ChargingConfig;
  meters: MetersApi | undefined;
  gpio: GpioBackend | undefined;
  gpioError?: string;
  clock: Clock;
  log: Logger;
  bus: EventBus;
  outbox: Outbox;
  metrics?: Metrics;
  /** Tick period (ms) of the time-based checks (over-time, meter staleness). */
  tickMs?: number;
}

/** A refused command (the registry turns it into an error result with this code). */
export class ChargingError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ChargingSupervisor implements ChargingApi {
  readonly piles: PileRuntime[] = [];
  private tick: NodeJS.Timeout | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly counters = { sessions: 0, cuts: {} as Record<string, number>, writeRetries: 0, faults: 0 };
  private readonly inst: { sessions: Counter<'pile'>; cuts: Counter<'reason'>; retries: Counter; faults: Counter<'kind'> } | undefined;
  private stopped = false;
  appendFailures = 0;

  constructor(private readonly o: SupervisorOptions) {
    const now = o.clock.now();
    for (const cfg of o.config.piles) {
      const pile: PileRuntime = { cfg, ports: [], inputs: cfg.smoke.map((s) => ({ name: s.kind === 'gpio' ? `gpio ${s.pin}` : `${s.device}.${s.point}`, active: false })) };
      for (const pc of cfg.ports) pile.ports.push({ pile, cfg: pc, th: portThresholds(cfg, pc), state: 'off', since: now, powerW: null, readingAt: null, readingMono: o.clock.monotonic(), energy: undefined, relayOn: null, order: 0 });
      this.piles.push(pile);
    }
    if (o.metrics) {
      const m = o.metrics;
      this.inst = {
        sessions: m.counter({ name: 'estate_charging_sessions_total', help: 'Charging sessions ended (recorded upstream), by pile', labelNames: ['pile'] }),
        cuts: m.counter({ name: 'estate_charging_cuts_total', help: 'Ports switched off by the supervisor, by reason (full, over_power, over_time, fire, stop, fault)', labelNames: ['reason'] }),
        retries: m.counter({ name: 'estate_charging_relay_write_retries_total', help: 'Relay writes repeated because the write failed or the coil did not read back as written' }),
        faults: m.counter({ name: 'estate_charging_faults_total', help: 'Ports that went to fault, by kind (relay, meter)', labelNames: ['kind'] }),
      };
    }
  }

  // ---- lifecycle ------------------------------------------------------------------

  async start(): Promise<void> {
    this.unsubscribe.push(this.o.bus.on('meter.reading', (e) => this.onReading(e.device, e.values)));
    this.unsubscribe.push(this.o.bus.on('meter.device', (e) => (e.online ? undefined : this.onMeterOffline(e.device, e.reason))));
    await this.openGpio();
    this.tick = setInterval(() => this.onTick(), this.o.tickMs ?? 250);
    this.tick.unref();
    // Every port starts enabled (relay on, read back) unless its pile is on fire: the
    // piles serve residents; a port that cannot be switched is a fault from the start.
    await Promise.all(this.piles.flatMap((pile) => (pile.fireSince !== undefined ? [] : pile.ports.map((p) => this.enablePort(p, 'start').catch(() => undefined)))));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tick) clearInterval(this.tick);
    for (const u of this.unsubscribe.splice(0)) u();
    // Modbus relays keep their state across a restart (the board holds the coil): their
    // open sessions are not recorded, they continue on the pile. A GPIO line nobody
    // drives any more has no guaranteed level (a released character-device line may
    // float or be reset by the kernel), so a GPIO relay goes to its safe state, off,
    // before the line is let go, and its session ends here (endReason shutdown).
    for (const pile of this.piles) {
      for (const i of pile.inputs) i.gpio?.close();
      for (const p of pile.ports) {
        if (!p.gpioOut) continue;
        try {
          p.gpioOut.write(false);
          p.relayOn = false;
          this.endSession(p, 'shutdown');
          if (p.state !== 'fault') this.setState(p, 'off', 'shutdown');
        } catch (err) {
          this.o.log.error({ pile: pile.cfg.id, port: p.cfg.id, err: (err as Error).message }, 'GPIO relay could not be switched off at shutdown');
        }
        p.gpioOut.close();
      }
    }
  }

  /** Crash hook: GPIO relays to their safe state (off). Modbus coils cannot be written synchronously. */
  emergencyStop(): void {
    for (const pile of this.piles) for (const p of pile.ports) p.gpioOut?.write(false);
  }

  private async openGpio(): Promise<void> {
    for (const pile of this.piles) {
      for (const p of pile.ports) {
        const r = p.cfg.relay;
        if (r.kind !== 'gpio') continue;
        if (!this.o.gpio) {
          this.setFault(p, 'relay', `no GPIO for the relay: ${this.o.gpioError ?? 'GPIO unavailable'}`);
          continue;
        }
        try {
          // Opened off: a start never energises a port before the supervisor decides.
          p.gpioOut = await this.o.gpio.openOutput({ line: r.pin, activeLow: r.activeLow ?? false, initial: false, label: `charging ${pile.cfg.id}/${p.cfg.id} relay` });
          p.relayOn = false;
        } catch (err) {
          this.setFault(p, 'relay', `GPIO ${r.pin}: ${(err as Error).message}`);
        }
      }
      for (const [i, s] of pile.cfg.smoke.entries()) {
        if (s.kind !== 'gpio') continue;
        const input = pile.inputs[i]!;
        if (!this.o.gpio) {
          this.alarm('fault', pile, undefined, true, `smoke input ${input.name}: no GPIO (${this.o.gpioError ?? 'GPIO unavailable'})`);
          continue;
        }
        try {
          const g = await this.o.gpio.openInput({ line: s.pin, activeLow: s.activeLow ?? true, leadingEdge: true, debounceMs: 50, label: `charging ${pile.cfg.id} smoke` });
          input.gpio = g;
          g.onChange((v) => this.onSmoke(pile, i, v));
          if (g.value()) this.onSmoke(pile, i, true);
        } catch (err) {
          this.alarm('fault', pile, undefined, true, `smoke input ${input.name}: ${(err as Error).message}`);
        }
      }
    }
  }

  // ---- inputs ---------------------------------------------------------------------

  private onReading(device: string, values: MeterPointValue[]): void {
    if (this.stopped) return;
    const nowMono = this.o.clock.monotonic();
    for (const pile of this.piles) {
      pile.cfg.smoke.forEach((s, i) => {
        if (s.kind !== 'modbus' || s.device !== device) return;
        const v = values.find((x) => x.name === s.point);
        if (!v || v.value === null || v.quality !== 'good') return;
        this.onSmoke(pile, i, (s.activeLow ?? false) ? v.value === 0 : v.value !== 0);
      });
      for (const p of pile.ports) {
        if (p.cfg.meter.device !== device) continue;
        const pw = values.find((x) => x.name === p.cfg.meter.power);
        if (!pw || pw.value === null || pw.quality === 'invalid' || pw.quality === 'unsupported') continue;
        const en = p.cfg.meter.energy ? values.find((x) => x.name === p.cfg.meter.energy) : undefined;
        if (en?.value !== null && en?.value !== undefined && en.quality === 'good') p.energy = en.value;
        p.powerW = pw.value;
        p.readingAt = pw.ts;
        p.readingMono = nowMono;
        this.evaluate(p, pw.value, nowMono);
      }
    }
  }

  private onMeterOffline(device: string, reason: string): void {
    for (const pile of this.piles) for (const p of pile.ports) if (p.cfg.meter.device === device && p.state !== 'fault') void this.fault(p, 'meter', `meter ${device} offline: ${reason}`);
  }

  private onTick(): void {
    if (this.stopped) return;
    const mono = this.o.clock.monotonic();
    const staleMs = this.o.config.meterStaleS * 1000;
    for (const pile of this.piles)
      for (const p of pile.ports) {
        if (p.state === 'charging' && p.session && mono - p.session.startMono >= p.th.maxHours * 3_600_000) void this.cut([p], 'over_time');
        else if ((p.state === 'charging' || p.state === 'idle') && mono - p.readingMono > staleMs) void this.fault(p, 'meter', `no reading from meter ${p.cfg.meter.device} for ${Math.round((mono - p.readingMono) / 1000)} s`);
      }
  }

  /** The session rules for one reading. */
  private evaluate(p: PortRuntime, w: number, mono: number): void {
    const now = this.o.clock.now();
    if (p.state === 'idle' && w > p.th.startW) {
      p.session = { id: randomUUID(), start: now, startMono: mono, startEnergy: p.energy, lastEnergy: p.energy, integratedKWh: 0, peakW: w, lastSample: { at: mono, w } };
      p.belowSince = undefined;
      p.overSince = undefined;
      this.setState(p, 'charging', `power ${w} W above ${p.th.startW} W`);
      return;
    }
    if (p.state !== 'charging' || !p.session) return;
    const s = p.session;
    if (s.lastSample) s.integratedKWh += (((s.lastSample.w + w) / 2) * (mono - s.lastSample.at)) / 3_600_000_000;
    s.lastSample = { at: mono, w };
    s.peakW = Math.max(s.peakW, w);
    if (p.energy !== undefined) s.lastEnergy = p.energy;
    if (w > p.th.maxW) {
      p.overSince ??= mono;
      if (mono - p.overSince >= p.th.overPowerS * 1000) {
        void this.cut([p], 'over_power');
        return;
      }
    } else p.overSince = undefined;
    if (w < p.th.taperW) {
      p.belowSince ??= mono;
      if (mono - p.belowSince >= p.th.fullAfterS * 1000) void this.cut([p], 'full');
    } else p.belowSince = undefined;
  }

  private onSmoke(pile: PileRuntime, index: number, active: boolean): void {
    const input = pile.inputs[index]!;
    if (input.active === active) return;
    input.active = active;
    const anyActive = pile.inputs.some((i) => i.active);
    if (active && pile.fireSince === undefined) {
      pile.fireSince = this.o.clock.now();
      this.o.log.error({ pile: pile.cfg.id, input: input.name }, 'smoke/heat input tripped: cutting every port of the pile');
      // Cut first, record after: nothing may delay the writes.
      void this.cut(pile.ports, 'fire');
      this.alarm('fire', pile, undefined, true, `smoke/heat input ${input.name} tripped: every port of pile ${pile.cfg.id} cut`);
    } else if (!anyActive && pile.fireSince !== undefined) {
      pile.fireSince = undefined;
      this.alarm('fire', pile, undefined, false, `smoke/heat inputs of pile ${pile.cfg.id} back to normal; ports stay off until enabled`);
    }
  }

  // ---- actions --------------------------------------------------------------------

  /** Switch ports off for `reason`, ending their sessions. Resolves when the relays are confirmed off (or the ports are faults). */
  async cut(ports: PortRuntime[], reason: EndReason): Promise<void> {
    const targets = ports.filter((p) => !(reason !== 'fire' && reason !== 'stop' && p.state === 'off'));
    if (!targets.length) return;
    for (const p of targets) {
      this.endSession(p, reason);
      if (p.state !== 'fault') this.setState(p, 'off', reason);
      p.lastEnd = { reason, at: this.o.clock.now() };
      this.counters.cuts[reason] = (this.counters.cuts[reason] ?? 0) + 1;
      this.inst?.cuts.inc({ reason });
    }
    if (reason === 'over_power') for (const p of targets) this.alarm('over_power', p.pile, p, true, `port ${p.pile.cfg.id}/${p.cfg.id} drew more than ${p.th.maxW} W for ${p.th.overPowerS} s: cut`);
    const failed = await this.setRelays(targets, false);
    for (const [p, why] of failed) this.setFault(p, 'relay', why);
  }

  private async fault(p: PortRuntime, kind: 'meter' | 'relay', why: string): Promise<void> {
    if (p.state === 'fault') return;
    this.setFault(p, kind, why);
    const failed = await this.setRelays([p], false);
    for (const [q, w] of failed) {
      q.fault = `${why}; relay: ${w}`;
      this.o.log.error({ pile: q.pile.cfg.id, port: q.cfg.id, err: w }, 'port fault: the relay cannot be put in its safe state');
    }
  }

  private setFault(p: PortRuntime, kind: 'meter' | 'relay', why: string): void {
    this.endSession(p, 'fault');
    const was = p.state;
    p.fault = why;
    p.lastEnd = { reason: 'fault', at: this.o.clock.now() };
    this.counters.faults++;
    this.inst?.faults.inc({ kind });
    this.setState(p, 'fault', why);
    if (was !== 'fault') this.alarm('fault', p.pile, p, true, `port ${p.pile.cfg.id}/${p.cfg.id}: ${why}`);
  }

  /** Enable a port (relay on, read back) → idle. */
  async enablePort(p: PortRuntime, by: string): Promise<PortStatus> {
    if (p.pile.fireSince !== undefined) throw new ChargingError('fire_active', `pile ${p.pile.cfg.id} has a tripped smoke/heat input since ${new Date(p.pile.fireSince).toISOString()}: no port may be enabled until it clears`);
    if (p.cfg.relay.kind === 'gpio' && !p.gpioOut) throw new ChargingError('relay_unavailable', `port ${p.pile.cfg.id}/${p.cfg.id}: ${p.fault ?? 'its GPIO relay is not open'}`);
    const failed = await this.setRelays([p], true);
    const f = failed.get(p);
    if (f) {
      if (!f.startsWith('superseded')) this.setFault(p, 'relay', f);
      throw new ChargingError(f.startsWith('superseded') ? 'superseded' : 'relay_fault', `port ${p.pile.cfg.id}/${p.cfg.id}: ${f}`);
    }
    const wasFault = p.state === 'fault';
    p.fault = undefined;
    // A fresh staleness clock: a port enabled after a meter outage gets meterStaleS to be read.
    p.readingMono = this.o.clock.monotonic();
    this.setState(p, 'idle', `enabled (${by})`);
    if (wasFault) this.alarm('fault', p.pile, p, false, `port ${p.pile.cfg.id}/${p.cfg.id} enabled again (${by})`);
    return this.portStatus(p);
  }

  /**
   * Put relays in a state: coils grouped per board (contiguous runs in one FC 0F write),
   * read back per board in one FC 01 read, retried up to relayRetries times. GPIO relays
   * are written directly. Returns the ports that did not reach the state, with why.
   */
  private async setRelays(ports: PortRuntime[], on: boolean): Promise<Map<PortRuntime, string>> {
    const failed = new Map<PortRuntime, string>();
    const orders = new Map(ports.map((p) => [p, ++p.order]));
    const boards = new Map<string, PortRuntime[]>();
    for (const p of ports) {
      const r = p.cfg.relay;
      if (r.kind === 'gpio') {
        if (!p.gpioOut) failed.set(p, 'GPIO relay not open');
        else {
          // A write that throws (I/O error, the chip gone) must fail this port only: the
          // other ports of a fire cut still get their writes.
          try {
            p.gpioOut.write(on);
            p.relayOn = on;
          } catch (err) {
            failed.set(p, `GPIO ${r.pin}: ${(err as Error).message}`);
          }
        }
        continue;
      }
      boards.set(r.device, [...(boards.get(r.device) ?? []), p]);
    }
    await Promise.all(
      [...boards].map(async ([device, list]) => {
        const meters = this.o.meters;
        if (!meters) {
          for (const p of list) failed.set(p, 'the meters capability is not running (relay boards are meters devices)');
          return;
        }
        const coilOf = (p: PortRuntime) => (p.cfg.relay as { coil: number }).coil;
        let pending = [...list].sort((a, b) => coilOf(a) - coilOf(b));
        let lastError = '';
        for (let attempt = 0; attempt <= this.o.config.relayRetries && pending.length; attempt++) {
          if (attempt > 0) {
            this.counters.writeRetries++;
            this.inst?.retries.inc();
          }
          try {
            for (const run of runs(pending.map(coilOf))) await meters.writeCoils(device, run.start, Array(run.count).fill(on), { urgent: true });
            const lo = coilOf(pending[0]!);
            const hi = coilOf(pending[pending.length - 1]!);
            const states = await meters.readCoils(device, lo, hi - lo + 1, { urgent: true });
            const next: PortRuntime[] = [];
            for (const p of pending) {
              const actual = states[coilOf(p) - lo]!;
              if (orders.get(p) !== p.order) {
                failed.set(p, 'superseded by a newer order');
                continue;
              }
              p.relayOn = actual;
              if (actual !== on) next.push(p);
            }
            if (next.length) lastError = `coil${next.length > 1 ? 's' : ''} ${next.map(coilOf).join(', ')} of ${device} read back ${on ? 'off' : 'on'} after writing ${on ? 'on' : 'off'} (relay does not follow)`;
            pending = next;
          } catch (err) {
            lastError = `${device}: ${(err as Error).message}`;
          }
          // A newer order for a port ends this one's retries.
          pending = pending.filter((p) => {
            if (orders.get(p) === p.order) return true;
            failed.set(p, 'superseded by a newer order');
            return false;
          });
        }
        for (const p of pending) failed.set(p, `${lastError} after ${this.o.config.relayRetries + 1} attempt(s)`);
      }),
    );
    return failed;
  }

  private endSession(p: PortRuntime, reason: EndReason): void {
    const s = p.session;
    if (!s) return;
    p.session = undefined;
    const fromMeter = s.startEnergy !== undefined && s.lastEnergy !== undefined && s.lastEnergy >= s.startEnergy;
    const rec: SessionRecord = {
      id: s.id,
      pile: p.pile.cfg.id,
      port: p.cfg.id,
      start: s.start,
      end: this.o.clock.now(),
      kWh: Math.round((fromMeter ? s.lastEnergy! - s.startEnergy! : s.integratedKWh) * 1000) / 1000,
      energySource: fromMeter ? 'meter' : 'integrated',
      peakW: Math.round(s.peakW * 10) / 10,
      endReason: reason,
    };
    this.counters.sessions++;
    this.inst?.sessions.inc({ pile: rec.pile });
    // The event stream is never evicted: billing depends on these.
    this.append({ stream: 'event', type: 'charging.session', ts: rec.end, data: rec });
    this.o.bus.emit('charging.session', rec);
    this.o.log.info(rec, 'charging session ended');
  }

  private setState(p: PortRuntime, state: PortState, cause: string): void {
    if (p.state === state && state !== 'fault') return;
    p.state = state;
    p.since = this.o.clock.now();
    const st = this.portStatus(p);
    this.append({ stream: 'event', type: 'charging.port', ts: p.since, data: { pile: st.pile, port: st.port, state, cause, ...(p.fault && state === 'fault' ? { fault: p.fault } : {}) } });
    this.o.bus.emit('charging.port', { ...st, cause });
  }

  /** Alarms go to the alarm stream, which the outbox never evicts. */
  private alarm(alarm: ChargingAlarmKind, pile: PileRuntime, p: PortRuntime | undefined, active: boolean, message: string): void {
    const at = this.o.clock.now();
    const data = { alarm, pile: pile.cfg.id, ...(p ? { port: p.cfg.id } : {}), active, message, at };
    this.append({ stream: 'alarm', type: `charging.${alarm}`, ts: at, data });
    this.o.bus.emit('charging.alarm', data);
    this.o.log[active ? 'warn' : 'info'](data, 'charging alarm');
  }

  append(rec: RecordInput): void {
    this.o.outbox.append(rec).catch((err) => {
      this.appendFailures++;
      this.o.log.error({ err: String(err), type: rec.type }, 'charging record not stored');
    });
  }

  // ---- queries --------------------------------------------------------------------

  port(pile: string, port: string): PortRuntime {
    const pl = this.piles.find((x) => x.cfg.id === pile);
    if (!pl) throw new ChargingError('unknown_pile', `no pile "${pile}" (piles: ${this.piles.map((x) => x.cfg.id).join(', ') || 'none'})`);
    const p = pl.ports.find((x) => x.cfg.id === port);
    if (!p) throw new ChargingError('unknown_port', `pile ${pile} has no port "${port}" (ports: ${pl.ports.map((x) => x.cfg.id).join(', ')})`);
    return p;
  }

  portStatus(p: PortRuntime): PortStatus {
    const r = p.cfg.relay;
    const s = p.session;
    const kWh = s ? (s.startEnergy !== undefined && s.lastEnergy !== undefined ? s.lastEnergy - s.startEnergy : s.integratedKWh) : 0;
    return {
      pile: p.pile.cfg.id,
      port: p.cfg.id,
      state: p.state,
      since: p.since,
      powerW: p.powerW,
      readingAt: p.readingAt,
      relay: { kind: r.kind, on: p.relayOn, where: r.kind === 'gpio' ? `GPIO ${r.pin}` : `${r.device} coil ${r.coil}` },
      ...(s ? { session: { id: s.id, start: s.start, kWh: Math.round(kWh * 1000) / 1000, peakW: s.peakW } } : {}),
      ...(p.lastEnd ? { lastEnd: { ...p.lastEnd } } : {}),
      ...(p.fault ? { fault: p.fault } : {}),
    };
  }

  status(): ChargingStatus {
    const piles: PileStatus[] = this.piles.map((pl) => ({
      id: pl.cfg.id,
      ...(pl.cfg.name ? { name: pl.cfg.name } : {}),
      fire: { active: pl.fireSince !== undefined, ...(pl.fireSince !== undefined ? { since: pl.fireSince } : {}), inputs: pl.inputs.map((i) => ({ input: i.name, active: i.active })) },
      ports: pl.ports.map((p) => this.portStatus(p)),
    }));
    return { piles, counters: { ...this.counters, cuts: { ...this.counters.cuts } } };
  }

  health(): { ok: boolean; message?: string; detail: Record<string, unknown> } {
    const fire = this.piles.filter((p) => p.fireSince !== undefined).map((p) => p.cfg.id);
    const faults = this.piles.flatMap((pl) => pl.ports.filter((p) => p.state === 'fault').map((p) => `${pl.cfg.id}/${p.cfg.id} (${p.fault})`));
    const parts = [...(fire.length ? [`fire on pile(s) ${fire.join(', ')}`] : []), ...(faults.length ? [`${faults.length} port fault(s): ${faults.slice(0, 3).join('; ')}`] : [])];
    return { ok: parts.length === 0, ...(parts.length ? { message: parts.join('; ') } : {}), detail: { piles: this.piles.length, ports: this.piles.reduce((n, p) => n + p.ports.length, 0), fire, faults: faults.length } };
  }
}

/** Contiguous runs of sorted coil addresses: [0,1,2,5] → {0,3},{5,1}. */
export function runs(coils: number[]): Array<{ start: number; count: number }> {
  const out: Array<{ start: number; count: number }> = [];
  for (const c of coils) {
    const last = out[out.length - 1];
    if (last && c === last.start + last.count) last.count++;
    else if (!last || c >= last.start + last.count) out.push({ start: c, count: 1 });
  }
  return out;
}
