// Start-up and shutdown races against a real broker: the retained `online` birth comes
// only after every module registered its commands; once stopping begins commands are
// answered `shutting_down`; a stop requested during start-up stops start-up; a clean
// shutdown leaves `offline` with its reason as the retained status (the will is discarded).
import t from 'tap';
import { Type } from '@sinclair/typebox';
import mqtt from 'mqtt';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { startGateway, testConfig, silentLog } from '../helpers/gateway.js';
import { Gateway } from '../../edge/gateway.js';
import type { ModuleContext, GatewayModule } from '../../edge/module.js';

const BASE = 'estate/t-site/t-gw';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * How mosquitto says the gateway's (client id t-site-t-gw) connection ended: 'disconnected'
 * after a DISCONNECT (the will is discarded), 'closed its connection' or 'socket error'
 * when it was dropped (the will is published); undefined while it has not ended.
 */
const ended = (broker: Broker): string | undefined => {
  const m = /Client t-site-t-gw (disconnected|closed its connection)|Socket error on client t-site-t-gw/.exec(broker.log());
  return m ? (m[1] ?? 'socket error') : undefined;
};

function slowModule(name: string, startMs: number, stopMs: number, events: string[]) {
  return (ctx: ModuleContext): GatewayModule => ({
    name,
    async start() {
      events.push(`${name} starting`);
      await sleep(startMs);
      ctx.commands.register({ name: `${name}.hello`, description: '', role: 'technician', args: Type.Object({}), handler: () => ({ hello: name }) });
      events.push(`${name} started`);
    },
    async stop() {
      events.push(`${name} stopping`);
      await sleep(stopMs);
      ctx.commands.unregister(`${name}.hello`);
      events.push(`${name} stopped`);
    },
  });
}

async function retainedStatus(url: string): Promise<any> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5 });
  const got = new Promise<any>((resolve) => c.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
  await c.subscribeAsync(`${BASE}/status`, { qos: 1 });
  const v = await Promise.race([got, sleep(2000).then(() => undefined)]);
  await c.endAsync(true);
  return v;
}

t.test('birth only after every module registered its commands; a command sent on the birth is executed', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const events: string[] = [];
  let answer: any;
  // The platform's reflex: the moment the gateway says online, send it a command.
  platform.client.on('message', (topic, payload) => {
    if (topic === `${BASE}/status` && JSON.parse(payload.toString()).state === 'online' && !answer) answer = platform.command(BASE, 'late.hello');
  });
  const gw = await startGateway({ uplink: { url: broker.url } }, { modules: [slowModule('early', 10, 10, events), slowModule('late', 400, 10, events)] });
  t.teardown(() => gw.stop());
  await waitFor(() => answer !== undefined, 10_000, 'online birth');
  t.same(await answer, { commandId: (await answer).commandId, name: 'late.hello', ok: true, result: { hello: 'late' } }, "the last module's command works on the birth");
});

t.test('once stopping begins: shutting_down answers, modules stopped, retained offline with the reason and no will', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const events: string[] = [];
  const gw = await startGateway({ uplink: { url: broker.url } }, { modules: [slowModule('doors', 10, 600, events)] });
  await waitFor(() => platform.raw.some((m) => m.topic === `${BASE}/status` && JSON.parse(m.payload.toString()).state === 'online'), 10_000, 'online');
  t.equal((await platform.command(BASE, 'doors.hello')).ok, true);
  const stopped = gw.stop('maintenance');
  await sleep(100);
  const during = await platform.command(BASE, 'doors.hello');
  t.match(during, { ok: false, error: { code: 'shutting_down' } }, 'refused with shutting_down while modules stop');
  await stopped;
  t.same(events.slice(-2), ['doors stopping', 'doors stopped']);
  // Bounded by the broker's own account of how the connection ended, not a sleep: by the
  // time mosquitto logs it, it has decided whether to publish the will.
  await waitFor(() => ended(broker) !== undefined, 5000, 'the broker logging the disconnect');
  t.equal(ended(broker), 'disconnected', `the broker saw a DISCONNECT, not a dropped connection (${ended(broker)})`);
  await platform.waitFor(() => platform.raw.filter((m) => m.topic === `${BASE}/status`).length >= 2, 5000, 'the offline status');
  const statuses = platform.raw.filter((m) => m.topic === `${BASE}/status`).map((m) => JSON.parse(m.payload.toString()));
  t.match(statuses.at(-1), { state: 'offline', reason: 'maintenance' }, 'last status: offline with the reason');
  t.notOk(
    statuses.some((s) => s.reason === 'connection lost'),
    'the will was discarded (clean DISCONNECT)',
  );
  t.match(await retainedStatus(broker.url), { state: 'offline', reason: 'maintenance' }, 'retained status says why');
});

t.test('MQTT 3.1.1: a clean shutdown also discards the will', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const gw = await startGateway({ uplink: { url: broker.url, protocolVersion: 4 } });
  await waitFor(() => gw.uplink.isConnected(), 10_000, 'connect');
  await sleep(200);
  await gw.stop('SIGTERM');
  await waitFor(() => ended(broker) !== undefined, 5000, 'the broker logging the disconnect');
  t.equal(ended(broker), 'disconnected', `the broker saw a DISCONNECT, not a dropped connection (${ended(broker)})`);
  t.match(await retainedStatus(broker.url), { state: 'offline', reason: 'SIGTERM' });
});

t.test('a stop requested during start-up stops start-up: no module starts after it, nothing runs after "stopped"', async (t) => {
  const events: string[] = [];
  const loaded = testConfig();
  const gw = new Gateway({ loaded, log: silentLog, modules: [slowModule('a', 300, 10, events), slowModule('b', 10, 10, events), slowModule('c', 10, 10, events)] });
  const starting = gw.start();
  // Stop while module a is starting (it takes 300 ms): waited for, not a fixed 100 ms that a
  // loaded machine spends before any module starts (then a never starts and the test fails).
  await waitFor(() => events.includes('a starting'), 10_000, 'module a starting');
  t.notOk(events.includes('a started'), "the stop lands during a's start");
  const stopping = gw.stop('SIGTERM');
  await starting;
  await stopping;
  events.push('gateway stopped');
  await sleep(300);
  t.notOk(gw.isStarted(), 'never reported started');
  t.same(events, ['a starting', 'a started', 'a stopping', 'a stopped', 'gateway stopped'], 'b and c never started; a was stopped');
  const r = await gw.commands.execute('a.hello', {}, { id: 'x', source: 'local', receivedAt: Date.now() });
  t.match(r.result, { ok: false, error: { code: 'shutting_down' } });
});

t.test('stopped before it started (SIGTERM while the code loaded): start() starts nothing, nothing is written', async (t) => {
  const { existsSync, readdirSync } = await import('node:fs');
  const loaded = testConfig();
  const dataDir = loaded.config.gateway.dataDir;
  const events: string[] = [];
  const g = new Gateway({ loaded, log: silentLog, modules: [slowModule('a', 10, 10, events)] });
  await g.stop('SIGTERM');
  await g.start();
  t.notOk(g.isStarted(), 'not started');
  t.same(events, [], 'no module started');
  t.same(existsSync(dataDir) ? readdirSync(dataDir) : [], [], 'no database opened in the data dir');
  await g.stop('SIGTERM');
});
