// The e-bike blocker end to end on clips CI can build: a real gateway, real Mosquitto, the
// real object detector in its inference worker, a looped video file as the car camera
// (system ffmpeg, real-time rate), the GPIO simulator as the relay board and the simulated
// player as the speaker. The clips are made here, in a temp dir, by `npm run media:ebike`
// from the Debian packages python3-skimage and darknet (sha256-pinned stills; .ci/run puts
// their .debs into var/debs, elsewhere the script runs `apt-get download`). If they cannot
// be made, the file fails at once naming what is missing; it never skips.
//   - e-bike (the skimage motorcycle sliding into the car over CLIP.enterS): the relay is
//     energised within 2 s of the first frame, the prompt plays at the hold and repeats,
//     the car stays held while the clip loops, `elevator.ebike` reaches the platform;
//   - bicycle (darknet dog.jpg) and person (skimage astronaut) clips, two cars of one
//     gateway: each looped at least twice, objects seen, never held, no prompt, no event.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { SimulatedPlayer } from '../../edge/elevator/audio.js';
import { createElevatorModule, type ElevatorModule } from '../../edge/elevator/module.js';
import { REPO } from '../models/shared.js';
import { getModel, loadManifest } from '../../models/manifest.js';
import { CLIP } from '../../scripts/ebike-media.js';

const base = 'estate/t-site/t-gw';
const FPS = 5; // the car camera's analysis rate (config default is the same order)
const LOOP_MS = CLIP.seconds * 1000;
const HOLD_WITHIN_MS = 2000; // issue 19: held within 2 s of the e-bike entering

const model = getModel(loadManifest(join(REPO, 'models', 'manifest.json')), 'nanodet-g-320', 'object-detector');
if (!existsSync(join(REPO, 'models', model.file))) throw new Error(`models/${model.file} missing: run npm run models -- --only nanodet-g-320`);

// The clips, by the script itself (about 5 s with the .debs on disk).
const DEBS = process.env.EBIKE_DEBS_DIR ?? join(REPO, 'var', 'debs');
const media = mkdtempSync(join(tmpdir(), 'ee-ebike-media-'));
t.teardown(() => rmSync(media, { recursive: true, force: true }));
const made = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'ebike-media.ts'), '--mirror', media, '--debs', DEBS], { cwd: REPO, encoding: 'utf8', timeout: 90_000 });
if (made.status !== 0) {
  const why = made.error ? made.error.message : (made.stderr || made.stdout).trim() || `exit ${made.status}`;
  throw new Error(
    `the e-bike test clips could not be made (npm run media:ebike -- --mirror ${media} --debs ${DEBS}): ${why}\n` +
      `They come from the Debian packages python3-skimage and darknet. .ci/run downloads their .debs into var/debs; elsewhere run apt-get update ` +
      `(the script then runs apt-get download into ${DEBS}), or put python3-skimage_*.deb and darknet_*.deb into EBIKE_DEBS_DIR.`,
  );
}
const clip = (name: string): string => {
  const p = join(media, name);
  if (!existsSync(p)) throw new Error(`npm run media:ebike succeeded but did not write ${name} (scripts/ebike-media.ts DERIVED changed?)`);
  return p;
};
const EBIKE = clip('ebike-skimage-motorcycle-enter.mp4');
const BICYCLE = clip('bicycle-darknet-dog-enter.mp4');
const PERSON = clip('person-skimage-astronaut-enter.mp4');

function car(id: string, path: string, pin: number) {
  return { id, camera: { source: { kind: 'file', path }, width: CLIP.width, height: CLIP.height, fps: FPS }, relay: { pin, pulseMs: 50 } };
}

/** The largest gap between consecutive edges of a pulsed line in [from, to] (what a watchdog relay module must bridge). */
function maxEdgeGap(history: readonly { at: number }[], from: number, to: number): number {
  const at = history.map((h) => h.at).filter((a) => a >= from && a <= to);
  let gap = 0;
  for (let i = 1; i < at.length; i++) gap = Math.max(gap, at[i]! - at[i - 1]!);
  return Math.max(gap, to - (at[at.length - 1] ?? from));
}

/** A real broker and platform subscriber, the GPIO simulator and the recording player of one test. */
async function peers(t: { teardown(fn: () => unknown): void }) {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const p = await Platform.connect(broker.url);
  t.teardown(() => p.close());
  return { broker, p, gpio: new SimulatedGpio(), player: new SimulatedPlayer() };
}

t.test('an e-bike pushed into the car: held within 2 s, prompt played, elevator.ebike upstream', async (t) => {
  const { broker, p, gpio, player } = await peers(t);
  // Detection settings are the config defaults (minScore 0.35, minAreaFraction 0.02, 3 of 5,
  // minHoldS 5); only the prompt repeats faster so that the repetition is seen in the run.
  let mod: ElevatorModule | undefined;
  const g = await startGateway(
    { uplink: { url: broker.url }, elevator: { gpio: { backend: 'simulated' }, prompt: { player: 'simulated', repeatS: 2 }, cars: [car('A', EBIKE, 20)] } },
    {
      modules: [
        (ctx) => {
          mod = createElevatorModule(ctx, { gpio, player }) as ElevatorModule;
          return mod;
        },
      ],
    },
  );
  let stopped = false;
  t.teardown(() => (stopped ? undefined : g.stop()));
  await waitFor(() => g.uplink.isConnected(), 10_000, 'uplink');

  // The camera starts once the detector is loaded; its first frame is the clip's t = 0, the
  // e-bike's first pixels come in on the next frames. Until the hold, every analysed frame
  // is noted (in-process, no MQTT round trip) so that a slow hold says where the time went.
  // Bounded: a hold only on a later loop is a failure with its figure, not a timeout.
  const timeline: string[] = [];
  let analysed = 0;
  const deadline = Date.now() + 30_000;
  while (!gpio.history(20).some((h) => h.value)) {
    if (Date.now() > deadline) throw new Error(`the relay was never energised in 30 s: ${JSON.stringify(mod?.status())}`);
    const c = mod!.status().cars[0]!;
    if (c.counters.frames !== analysed) {
      analysed = c.counters.frames;
      const moto = Math.max(0, ...c.lastDetections.filter((d) => d.cls === 'motorcycle').map((d) => d.score));
      timeline.push(`+${(c.lastDetections[0]?.at ?? c.camera.since) - c.camera.since} ms ${moto ? moto.toFixed(2) : '-'} (seen +${Date.now() - c.camera.since})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const heldAt = gpio.history(20).find((h) => h.value)!.at;
  const atHold = mod!.status().cars[0]!;
  timeline.push(`hold on the frame of +${(atHold.lastDetections[0]?.at ?? atHold.camera.since) - atHold.camera.since} ms`);
  let status = (await p.command(base, 'elevator.status')).result;
  const cam = status.cars[0].camera;
  t.equal(cam.state, 'streaming', 'camera streaming, never restarted');
  const firstFrameAt: number = cam.since;
  const latency = heldAt - firstFrameAt;
  t.ok(latency >= 0 && latency <= HOLD_WITHIN_MS, `relay energised ${latency} ms after the clip's first frame (e-bike fully in at ${CLIP.enterS * 1000} ms; limit ${HOLD_WITHIN_MS} ms)`);
  t.comment(`analysed frames before the hold (frame time, best motorcycle score, when its result was seen): ${timeline.join('; ')}`);
  t.equal(status.cars[0].state, 'holding');
  t.ok(
    status.cars[0].lastDetections.some((d: { cls: string; score: number }) => d.cls === 'motorcycle' && d.score >= 0.35),
    'a motorcycle ≥ 0.35 in the last detections',
  );

  // The prompt: played at the hold (same tick as the relay), the synthesised zh-CN WAV.
  t.ok(player.played.length >= 1, 'prompt played');
  const first = player.played[0]!;
  t.ok(Math.abs(first.at - heldAt) <= 250, `prompt started with the hold (${first.at - heldAt} ms)`);
  t.match(first.file, /\.wav$/);
  t.ok(existsSync(first.file), 'the prompt WAV exists');
  t.equal(status.prompt.kind, 'speech', 'zh-CN prompt synthesised with espeak-ng');

  // Upstream: the platform receives elevator.ebike for car A.
  await p.waitFor(() => p.records('event').some((r) => r.type === 'elevator.ebike'), 10_000, 'elevator.ebike at the platform');
  const ev = p.records('event').find((r) => r.type === 'elevator.ebike')!;
  t.match(ev.data, { carId: 'A', model: 'nanodet-g-320' });
  t.ok(ev.data.score >= 0.35, `score ${ev.data.score}`);
  t.ok((ev.data.box.w * ev.data.box.h) / (CLIP.width * CLIP.height) >= 0.02, `box ${ev.data.box.w}×${ev.data.box.h} ≥ 2 % of the frame`);
  t.equal(ev.data.jpeg, undefined, 'no snapshot (off by default)');
  t.ok(ev.at - heldAt <= 2000, `elevator.ebike at the platform ${ev.at - heldAt} ms after the hold`);

  // The e-bike stays in the car while the clip loops (it re-enters at every loop start):
  // held throughout, one hold, the prompt repeating, the line pulsing for the watchdog relay.
  const until = firstFrameAt + 2 * LOOP_MS + 500;
  while (Date.now() < until) {
    const s = (await p.command(base, 'elevator.status')).result.cars[0];
    t.equal(s.state, 'holding', `still held at ${Date.now() - firstFrameAt} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  status = (await p.command(base, 'elevator.status')).result;
  const c = status.cars[0];
  t.equal(c.counters.holds, 1, 'one hold over two loops');
  t.equal(c.counters.releases, 0, 'never released');
  t.ok(c.counters.frames >= 10, `frames analysed (${c.counters.frames} over ${Math.round((Date.now() - firstFrameAt) / 1000)} s)`);
  const plays = player.played.map((x) => x.at);
  t.ok(plays.length >= 3, `prompt repeated while held (${plays.length} plays, repeatS 2)`);
  t.equal(p.records('event').filter((r) => r.type === 'elevator.ebike').length, 1, 'one elevator.ebike record');
  // The bound is loose on purpose: the edges come from the event loop, which this shared
  // 2-core box stalls for a few hundred ms at times (322 ms measured); the figure is printed.
  const gap = maxEdgeGap(gpio.history(20), heldAt, Date.now());
  t.ok(gap <= 1000, `relay line pulsed throughout the hold (largest gap between edges ${gap} ms, pulseMs 50)`);
  t.comment(`e-bike: held ${latency} ms after the first frame, event upstream ${ev.at - heldAt} ms after the hold, ${c.counters.frames} frames analysed, ${c.counters.ebikeFrames} e-bike frames, largest pulse gap ${gap} ms`);

  // Stopping the gateway releases the car.
  stopped = true;
  await g.stop();
  t.equal(gpio.level(20), false, 'released on stop');
});

t.test('a bicycle and a person pushed into two cars: seen, never held, no prompt, no event', async (t) => {
  const { broker, p, gpio, player } = await peers(t);
  const g = await startGateway({ uplink: { url: broker.url }, elevator: { gpio: { backend: 'simulated' }, prompt: { player: 'simulated' }, cars: [car('B', BICYCLE, 21), car('C', PERSON, 22)] } }, { modules: [(ctx) => createElevatorModule(ctx, { gpio, player })] });
  t.teardown(() => g.stop());
  await waitFor(() => g.uplink.isConnected(), 10_000, 'uplink');

  // Watch two full loops of each clip after its first frame, collecting what is seen.
  const seen: Record<string, Set<string>> = { B: new Set(), C: new Set() };
  let status: any;
  let start: number | undefined;
  const deadline = Date.now() + 30_000;
  for (;;) {
    status = (await p.command(base, 'elevator.status')).result;
    for (const c of status.cars) for (const d of c.lastDetections) seen[c.id]!.add(d.cls);
    if (start === undefined && status.cars.every((c: { camera: { state: string } }) => c.camera.state === 'streaming')) start = Math.max(...status.cars.map((c: { camera: { since: number } }) => c.camera.since));
    if (start !== undefined && Date.now() > start + 2 * LOOP_MS + 500) break;
    if (start === undefined && Date.now() > deadline) throw new Error(`the cameras were not both streaming within 30 s: ${JSON.stringify(status.cars.map((c: { camera: unknown }) => c.camera))}${status.problem ? ` (${status.problem})` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  t.equal(status.available, true, status.problem ?? 'detector running');
  for (const [id, what] of [
    ['B', 'bicycle'],
    ['C', 'person'],
  ] as const) {
    const c = status.cars.find((x: { id: string }) => x.id === id);
    t.equal(c.camera.state, 'streaming', `car ${id}: camera streaming`);
    t.ok(c.counters.frames >= 10, `car ${id}: ${c.counters.frames} frames analysed over two loops`);
    t.ok(seen[id]!.has(what), `car ${id}: the ${what} is seen (classes: ${[...seen[id]!].join(', ') || 'none'})`);
    t.equal(c.state, 'clear', `car ${id}: clear`);
    t.equal(c.counters.holds, 0, `car ${id}: never held`);
    t.equal(c.counters.ebikeFrames, 0, `car ${id}: no frame judged an e-bike`);
    t.comment(`car ${id} (${what}): ${c.counters.frames} frames analysed, classes seen ${[...seen[id]!].join(', ')}`);
  }
  for (const pin of [21, 22])
    t.same(
      gpio.history(pin).map((h) => h.value),
      [false],
      `relay ${pin} opened released and never moved`,
    );
  t.equal(player.played.length, 0, 'no prompt');
  t.ok(
    p.records('event').every((r) => r.type !== 'elevator.ebike'),
    'no elevator.ebike upstream',
  );
});
