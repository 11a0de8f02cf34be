// The charging capability module: the supervisor over the meters service (meters and
// relay boards are meters devices on the shared bus scheduler) and a GPIO backend for
// GPIO relays and detector inputs, its commands and the 'charging' service.
import type { GatewayModule, ModuleContext, ModuleFactory } from '../module.js';
import { openGpioBackend } from '../../drivers/gpio/index.js';
import { realTimers, type GpioBackend } from '../../drivers/gpio/types.js';
import { ChargingSupervisor } from './supervisor.js';
import { registerChargingCommands, CHARGING_COMMANDS } from './commands.js';
import { chargingCapability } from './capability.js';
import './api.js';

export interface ChargingModuleOptions {
  /** A GPIO backend instead of the configured one (tests, bench: the simulator). */
  backend?: GpioBackend;
  tickMs?: number;
}

export class ChargingModule implements GatewayModule {
  readonly name = 'charging';
  private sup: ChargingSupervisor | undefined;
  private backend: GpioBackend | undefined;
  private ownBackend = false;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly opts: ChargingModuleOptions = {},
  ) {}

  async start(): Promise<void> {
    const cfg = this.ctx.config.charging;
    const log = this.ctx.log.child({ mod: 'charging' });
    const needsGpio = cfg.piles.some((p) => p.ports.some((x) => x.relay.kind === 'gpio') || p.smoke.some((s) => s.kind === 'gpio'));
    let gpioError: string | undefined;
    if (this.opts.backend) this.backend = this.opts.backend;
    else if (needsGpio) {
      try {
        this.backend = openGpioBackend(cfg.gpio, { timers: realTimers, info: (m) => log.info(m), warn: (m, d) => log.warn(d ?? {}, m) });
        this.ownBackend = true;
      } catch (err) {
        // Ports on GPIO become faults and say why; Modbus ports still run.
        gpioError = (err as Error).message;
      }
    }
    const meters = this.ctx.services.get('meters');
    const rejected = this.ctx.metrics.counter({ name: 'estate_charging_rejected_total', help: 'Charging commands refused, by code', labelNames: ['code'] });
    this.sup = new ChargingSupervisor({
      config: cfg,
      meters,
      gpio: this.backend,
      ...(gpioError ? { gpioError } : {}),
      clock: this.ctx.clock,
      log,
      bus: this.ctx.bus,
      outbox: this.ctx.outbox,
      metrics: this.ctx.metrics,
      ...(this.opts.tickMs ? { tickMs: this.opts.tickMs } : {}),
    });
    registerChargingCommands(this.ctx.commands.forCapability(chargingCapability.name), this.sup, (code) => rejected.inc({ code }));
    this.ctx.services.provide('charging', this.sup);
    await this.sup.start();
    log.info({ piles: cfg.piles.length, ports: cfg.piles.reduce((n, p) => n + p.ports.length, 0) }, 'charging supervision started');
  }

  async stop(): Promise<void> {
    for (const c of CHARGING_COMMANDS) this.ctx.commands.unregister(c);
    await this.sup?.stop();
    if (this.ownBackend) this.backend?.close();
  }

  emergencyStop(): void {
    this.sup?.emergencyStop();
  }

  health() {
    return this.sup?.health() ?? { ok: false, message: 'not started' };
  }

  /** The supervisor (tests, bench). */
  get supervisor(): ChargingSupervisor | undefined {
    return this.sup;
  }
}

export function createChargingModule(ctx: ModuleContext, opts: ChargingModuleOptions = {}): GatewayModule | undefined {
  const c = ctx.config.charging;
  if (!c.enabled || c.piles.length === 0) return undefined;
  return new ChargingModule(ctx, opts);
}

export const chargingModule: ModuleFactory = (ctx) => createChargingModule(ctx);
