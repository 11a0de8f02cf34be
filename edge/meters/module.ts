// The meters capability module: profiles + buses from config → MetersService, its
// commands and the 'meters' service for the console.
import type { GatewayModule, ModuleContext, ModuleFactory } from '../module.js';
import { builtinProfilesDir, loadProfiles } from './profiles.js';
import { MetersService } from './service.js';
import { profileProblems } from './checks.js';
import { registerMeterCommands } from './commands.js';
import { metersCapability } from './capability.js';
import './api.js';

export class MetersModule implements GatewayModule {
  readonly name = 'meters';
  private svc: MetersService | undefined;
  private readonly commands;

  constructor(private readonly ctx: ModuleContext) {
    this.commands = ctx.commands.forCapability(metersCapability.name);
  }

  start(): void {
    const cfg = this.ctx.config.meters;
    const dirs = [builtinProfilesDir(), ...(cfg.profilesDir ? [cfg.profilesDir] : [])];
    const profiles = loadProfiles(dirs);
    const problems = profileProblems(cfg, profiles);
    if (problems.length) throw new Error(`meter configuration: ${problems.join('; ')}`);
    this.svc = new MetersService({
      config: cfg,
      profiles,
      clock: this.ctx.clock,
      log: this.ctx.log.child({ mod: 'meters' }),
      bus: this.ctx.bus,
      outbox: this.ctx.outbox,
      metrics: this.ctx.metrics,
    });
    registerMeterCommands(this.commands, this.svc);
    this.ctx.services.provide('meters', this.svc);
    this.svc.start();
    this.ctx.log.info({ buses: cfg.buses.length, devices: cfg.buses.reduce((n, b) => n + b.devices.length, 0), profiles: profiles.size }, 'meter reading started');
  }

  async stop(): Promise<void> {
    this.commands.unregisterAll();
    await this.svc?.stop();
  }

  health() {
    return this.svc?.health() ?? { ok: false, message: 'not started' };
  }
}

export const metersModule: ModuleFactory = (ctx) => {
  const m = ctx.config.meters;
  if (!m.enabled || m.buses.length === 0) return undefined;
  return new MetersModule(ctx);
};
