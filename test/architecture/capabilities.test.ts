// The core derives everything it knows about a capability from the descriptor list: a
// capability that exists only in this test (its descriptor, nothing else) gets its config
// section with its defaults, its checks and warnings run, its module is loaded when wanted
// and not otherwise, its commands show on its console page, its events are forwarded with
// the role it declared, and `estate-edge doctor` runs its check.
import t from 'tap';
import { Type } from '@sinclair/typebox';
import { Section } from '../../edge/config/types.js';
import { CORE_SECTIONS, GatewayConfigSchema, configSchemaOf } from '../../edge/config/schema.js';
import { checksOf, warningsOf, semanticChecks, configWarnings } from '../../edge/config/checks.js';
import { revisionOf, validateConfig, type LoadedConfig } from '../../edge/config/load.js';
import { moduleEntriesOf, moduleFactories, type LazyModule } from '../../edge/modules.js';
import { CAPABILITIES } from '../../edge/capabilities.js';
import { defineCapability, type CapabilityDescriptor } from '../../edge/capability.js';
import type { GatewayConfig } from '../../edge/config/core.js';
import type { GatewayModule, ModuleContext } from '../../edge/module.js';
import { Gateway } from '../../edge/gateway.js';
import { runDoctor } from '../../edge/doctor.js';
import { consolePages, eventAllowed, eventRolesOf, liveEventsOf, transientEventsOf, LIVE_EVENTS, TRANSIENT_EVENTS } from '../../edge/console/routes/capabilities.js';
import { silentLog, tempDir } from '../helpers/gateway.js';

// The next capability, as a folder would declare it: a car park barrier.
const ParkingSchema = Section(
  {
    enabled: Type.Boolean({ default: false, description: 'Run the car park barrier.' }),
    spaces: Type.Integer({ minimum: 0, maximum: 10000, default: 40, description: 'Spaces in the car park.' }),
    reserved: Type.Integer({ minimum: 0, default: 0, description: 'Spaces kept for visitors.' }),
  },
  { description: 'Car park barrier.', default: {} },
);
type ParkingConfig = { enabled: boolean; spaces: number; reserved: number };
const parkingOf = (c: GatewayConfig) => (c as unknown as { parking: ParkingConfig }).parking;

let loads = 0;
const parking = defineCapability({
  name: 'parking',
  config: { key: 'parking', schema: ParkingSchema },
  checks: [(c) => (parkingOf(c).reserved > parkingOf(c).spaces ? ['parking.reserved: more than parking.spaces'] : [])],
  warnings: [(c) => (parkingOf(c).enabled && parkingOf(c).spaces === 0 ? ['parking.spaces: 0, the barrier never opens'] : [])],
  wanted: (c) => parkingOf(c).enabled,
  load: async () => {
    loads++;
    return (ctx: ModuleContext): GatewayModule => {
      const commands = ctx.commands.forCapability('parking');
      return {
        name: 'parking',
        start() {
          commands.register({ name: 'barrier.open', description: 'Open the barrier.', role: 'technician', args: Type.Object({}), handler: () => ({ open: true }) });
          commands.register({ name: 'parking.count', description: 'Cars in.', role: 'viewer', pages: ['parking', 'parking-log'], args: Type.Object({}), handler: () => ({ cars: 3 }) });
          (ctx.services as unknown as { provide(name: string, s: unknown): void }).provide('parking', { spaces: parkingOf(ctx.config).spaces });
        },
        stop() {
          commands.unregister('barrier.open');
          commands.unregister('parking.count');
        },
        health: () => ({ ok: true }),
      };
    };
  },
  doctor: async () => [{ id: 'parking', label: '停车 parking', run: (ctx) => ctx.add(parkingOf(ctx.config).enabled ? 'OK' : 'SKIP', `${parkingOf(ctx.config).spaces} spaces`) }],
  events: [
    { name: 'parking.plate' as never, role: 'technician' },
    { name: 'parking.occupancy' as never, role: 'viewer', transient: true },
  ],
  pages: [
    { id: 'parking', what: 'car park', service: 'parking' as never },
    { id: 'parking-log', what: 'car park log', service: 'parking' as never },
  ],
});
const WITH_PARKING: readonly CapabilityDescriptor[] = [...CAPABILITIES, parking];

const base = (parkingSection?: Record<string, unknown>) => ({
  site: { id: 's' },
  gateway: { id: 'g', dataDir: tempDir('ee-cap-') },
  log: { level: 'warn' },
  http: { enabled: false },
  uplink: { url: 'mqtt://127.0.0.1:1', enabled: false },
  ...(parkingSection ? { parking: parkingSection } : {}),
});

t.test("the gateway's own list: sections, checks, warnings, modules and events as before, in list order", async (t) => {
  t.same(Object.keys(GatewayConfigSchema.properties), [...Object.keys(CORE_SECTIONS), 'meters', 'doors', 'vision', 'charging', 'elevator', 'upgrade', 'console']);
  t.same(
    CAPABILITIES.map((c) => c.name),
    ['meters', 'doors', 'vision', 'charging', 'elevator', 'fleet', 'upgrade', 'console'],
  );
  t.equal(semanticChecks.length, 1 + 6, 'the uplink check and one per capability');
  t.equal(configWarnings.length, 3, 'the meters, charging and elevator warnings');
  t.same(
    moduleFactories.map((m) => (typeof m === 'function' ? m.name : m.name)),
    ['bootModule', 'meters', 'doors', 'vision', 'charging', 'elevator', 'fleet', 'upgrade', 'console'],
  );
  t.same([...LIVE_EVENTS].sort(), [
    'access.decision',
    'charging.alarm',
    'charging.port',
    'charging.session',
    'door.alarm',
    'door.pinWait',
    'door.state',
    'elevator.alarm',
    'elevator.ebike',
    'elevator.state',
    'gateway.ready',
    'gateway.stopping',
    'meter.device',
    'meter.reading',
    'outbox.evicted',
    'uplink.state',
    'vision.camera',
    'vision.decision',
  ]);
  t.same(TRANSIENT_EVENTS, ['meter.reading']);
  for (const e of ['access.decision', 'vision.decision', 'audit', 'no.such.event']) t.notOk(eventAllowed('viewer', e), `${e}: not for viewers`);
  for (const e of ['access.decision', 'vision.decision', 'audit']) t.ok(eventAllowed('technician', e), `${e}: for technicians`);
  for (const e of ['door.state', 'meter.reading', 'uplink.state', 'console.config']) t.ok(eventAllowed('viewer', e), `${e}: for viewers`);
});

t.test('config: the section, its defaults and its checks come from the descriptor', async (t) => {
  const schema = configSchemaOf(WITH_PARKING);
  t.same(Object.keys(schema.properties).slice(-2), ['console', 'parking'], 'the new section follows the list');
  t.throws(() => configSchemaOf([...WITH_PARKING, { ...parking, name: 'parking2' }]), /config section "parking" of capability parking2 is already defined/);

  const ok = validateConfig(base({ enabled: true }), WITH_PARKING);
  t.same(ok.problems, []);
  t.same(parkingOf(ok.config!), { enabled: true, spaces: 40, reserved: 0 }, 'defaults filled from the section schema');
  t.same(parkingOf(validateConfig(base(), WITH_PARKING).config!), { enabled: false, spaces: 40, reserved: 0 }, 'the whole section defaults');

  const bad = validateConfig(base({ spaces: 'many', colour: 'red' }), WITH_PARKING);
  t.ok(bad.problems.includes('parking.colour: unknown key'), bad.problems.join('; '));
  t.ok(
    bad.problems.some((p) => p.startsWith('parking.spaces: ')),
    'its schema validates',
  );
  t.same(validateConfig(base({ spaces: 2, reserved: 5 }), WITH_PARKING).problems, ['parking.reserved: more than parking.spaces'], 'its check runs');
  t.equal(checksOf(WITH_PARKING).length, semanticChecks.length + 1);
  const warned = validateConfig(base({ enabled: true, spaces: 0 }), WITH_PARKING).config!;
  t.same(
    warningsOf(WITH_PARKING).flatMap((w) => w(warned)),
    ['parking.spaces: 0, the barrier never opens'],
    'its warning runs',
  );

  t.ok(validateConfig(base({ enabled: true })).problems.includes('parking: unknown key'), "the gateway's own list knows no such section");
});

function loadedWith(parkingSection: Record<string, unknown>): LoadedConfig {
  const { config, problems } = validateConfig(base(parkingSection), WITH_PARKING);
  if (!config) throw new Error(problems.join('; '));
  return { config, source: 'test', revision: revisionOf(config), secrets: new Map() };
}

t.test('modules: loaded only when wanted; its commands show on its pages with its capability', async (t) => {
  const entries = moduleEntriesOf([parking]);
  t.equal(entries.length, 2, 'the boot watch, then the capability');
  t.equal((entries[1] as LazyModule).name, 'parking');

  loads = 0;
  const off = new Gateway({ loaded: loadedWith({ enabled: false }), log: silentLog, modules: entries });
  await off.start();
  t.equal(loads, 0, 'not wanted: never imported');
  t.notOk(off.healthReport().parking, 'and not running');
  await off.stop();

  const g = new Gateway({ loaded: loadedWith({ enabled: true, spaces: 12 }), log: silentLog, modules: entries });
  await g.start();
  t.teardown(() => g.stop());
  t.equal(loads, 1, 'wanted: imported once');
  t.same(g.healthReport().parking, { ok: true });
  t.equal(g.commands.capabilityOf('barrier.open'), 'parking', 'its commands carry its capability');
  t.equal(g.commands.roleOf('barrier.open'), 'technician');
  t.equal(g.commands.capabilityOf('gateway.ping'), 'gateway', "the core's own carry the core's");

  const view = {
    commands: g.commands.list().map((c) => ({ name: c.name, capability: g.commands.capabilityOf(c.name), pages: g.commands.pagesOf(c.name) })),
    hasService: (name: string) => (g.services as unknown as { get(n: string): unknown }).get(name) !== undefined,
    health: g.healthReport(),
  };
  const pages = consolePages(WITH_PARKING, view);
  t.same(pages.parking, { configured: true, commands: ['barrier.open', 'parking.count'] }, 'its first page: its commands');
  t.same(pages['parking-log'], { configured: true, commands: ['parking.count'] }, 'the other page: the commands that asked for it');
  t.same(pages.meters, { configured: false, reason: 'meter reading is not configured on this gateway', commands: [] }, "the other capabilities' pages as ever");
  t.notOk(
    Object.values(pages).some((p) => p.commands.includes('gateway.ping')),
    "the core's commands are on no capability's page",
  );

  const r = await g.commands.execute('parking.count', {}, { id: 'c1', source: 'local', receivedAt: Date.now() });
  t.same(r.result, { ok: true, result: { cars: 3 } });
});

t.test("events: the descriptor's are forwarded live, transient and role as it declared", async (t) => {
  t.ok(liveEventsOf(WITH_PARKING).includes('parking.plate' as never));
  t.same(transientEventsOf(WITH_PARKING), ['meter.reading', 'parking.occupancy']);
  const roles = eventRolesOf(WITH_PARKING);
  t.equal(roles.get('parking.plate'), 'technician');
  t.equal(roles.get('parking.occupancy'), 'viewer');
});

t.test("doctor: the descriptor's check runs after the core's, with the typed config", async (t) => {
  const f = await runDoctor({ loaded: loadedWith({ enabled: true, spaces: 7 }), capabilities: [parking], systemctl: false });
  const mine = f.filter((x) => x.check === 'parking');
  t.same(mine, [{ check: 'parking', label: '停车 parking', level: 'OK', message: '7 spaces' }]);
  t.ok(f.findIndex((x) => x.check === 'broker') < f.findIndex((x) => x.check === 'parking'), 'after the core checks');
  t.notOk(
    f.some((x) => ['serial', 'gpio', 'camera', 'models', 'console'].includes(x.check)),
    "only the listed capabilities' checks",
  );
  const all = await runDoctor({ loaded: loadedWith({ enabled: false }), systemctl: false });
  t.same(
    [...new Set(all.map((x) => x.check))].filter((c) => ['serial', 'gpio', 'camera', 'models', 'console'].includes(c)),
    ['serial', 'gpio', 'camera', 'models', 'console'],
    "the gateway's own list: each capability's checks, in list order",
  );
});
