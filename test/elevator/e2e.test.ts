// The elevator blocker in a real gateway: real Mosquitto, the real object detector in its
// inference worker, a looped video file as the car camera (system ffmpeg), the GPIO
// simulator as the relay board, the simulated player as the speaker.
//   - a person in the car (shared face media video): detections, never a hold, no prompt;
//   - elevator.status over MQTT; elevator.release is audited upstream (who, from where);
//   - camera lost (RTSP camera refusing connections): alarm upstream, car not held.
// The e-bike → hold path (and bicycle/person clips → no hold) is test/elevator/ebike.test.ts,
// on clips npm run media:ebike makes from Debian packages; the SIGKILL safe state is
// test/elevator/safe-state.test.ts.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { SimulatedPlayer } from '../../edge/elevator/audio.js';
import { createElevatorModule } from '../../edge/elevator/module.js';
import { sharedMedia, REPO } from '../models/shared.js';
import { getModel, loadManifest } from '../../models/manifest.js';

const base = 'estate/t-site/t-gw';
const model = getModel(loadManifest(join(REPO, 'models', 'manifest.json')), 'nanodet-g-320', 'object-detector');
if (!existsSync(join(REPO, 'models', model.file))) throw new Error(`models/${model.file} missing: run npm run models -- --only nanodet-g-320`);

function elevator(camera: Record<string, unknown>) {
  return {
    gpio: { backend: 'simulated' },
    prompt: { player: 'simulated' },
    k: 3,
    n: 5,
    minHoldS: 1,
    cars: [{ id: 'A', name: 'Building 3 car A', camera, relay: { pin: 20, pulseMs: 50 } }],
  };
}

t.test('a person in the car: detections, no hold, no prompt; status and an audited release over MQTT', async (t) => {
  const video = join(sharedMedia(), 'video', 'obama_portrait_zoom_640x480.mp4');
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const gpio = new SimulatedGpio();
  const player = new SimulatedPlayer();
  const g = await startGateway({ uplink: { url: broker.url }, elevator: elevator({ source: { kind: 'file', path: video }, width: 640, height: 480, fps: 5 }) }, { modules: [(ctx) => createElevatorModule(ctx, { gpio, player })] });
  t.teardown(() => g.stop());
  const p = await Platform.connect(broker.url);
  t.teardown(() => p.close());
  await waitFor(() => g.uplink.isConnected(), 10_000, 'uplink');
  let status: any;
  for (let i = 0; i < 60; i++) {
    status = (await p.command(base, 'elevator.status')).result;
    if (status.cars[0].counters.frames >= 8) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.equal(status.available, true, status.problem ?? 'detector running');
  const car = status.cars[0];
  t.ok(car.counters.frames >= 8, `frames analysed (${car.counters.frames})`);
  t.equal(car.state, 'clear');
  t.equal(car.counters.holds, 0, 'never held');
  t.equal(car.counters.ebikeFrames, 0, 'no frame judged an e-bike');
  t.ok(
    car.lastDetections.some((d: { cls: string }) => d.cls === 'person'),
    'the person is seen',
  );
  t.same(
    gpio.history(20).map((h) => h.value),
    [false],
    'relay opened released and never moved',
  );
  t.equal(player.played.length, 0, 'no prompt');
  t.equal(status.prompt.kind, 'speech', 'zh-CN prompt synthesised at start');

  const r = await p.command(base, 'elevator.release', { car: 'A', reason: 'test' });
  t.match(r, { ok: true, result: { carId: 'A', released: false } });
  await p.waitFor(() => p.records('event').some((x) => x.type === 'elevator.override'), 10_000, 'override audit record');
  t.match(
    p.records('event').find((x) => x.type === 'elevator.override'),
    { data: { carId: 'A', source: 'mqtt', reason: 'test', wasHolding: false } },
  );
  const bad = await p.command(base, 'elevator.release', { car: 'Z' });
  t.match(bad, { ok: false, error: { code: 'unknown_car' } });
  const bad2 = await p.command(base, 'elevator.release', { car: 42 });
  t.equal(bad2.ok, false, 'bad arguments answered, not crashed');
  t.ok(
    p.records('event').every((x) => x.type !== 'elevator.ebike'),
    'no e-bike event upstream',
  );
});

t.test('camera lost: alarm upstream, the car is not held, health says which car', async (t) => {
  // A port that refuses connections: the RTSP camera is "unplugged".
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const gpio = new SimulatedGpio();
  const g = await startGateway({ uplink: { url: broker.url }, elevator: elevator({ source: { kind: 'rtsp', url: `rtsp://127.0.0.1:${port}/stream` }, staleS: 1, reconnectMinMs: 200, reconnectMaxMs: 1000 }) }, { modules: [(ctx) => createElevatorModule(ctx, { gpio, player: new SimulatedPlayer() })] });
  t.teardown(() => g.stop());
  const p = await Platform.connect(broker.url);
  t.teardown(() => p.close());
  await waitFor(() => g.uplink.isConnected(), 10_000, 'uplink');
  await p.waitFor(() => p.records('alarm').some((x) => x.type === 'elevator.camera_lost'), 20_000, 'camera_lost alarm');
  t.match(
    p.records('alarm').find((x) => x.type === 'elevator.camera_lost'),
    { data: { carId: 'A' } },
  );
  const status = (await p.command(base, 'elevator.status')).result;
  t.equal(status.cars[0].state, 'blind');
  t.equal(status.cars[0].relay.energised, false, 'released');
  t.equal(gpio.level(20), false);
});
