// A gateway killed with SIGKILL while it holds a car: what the hardware does. The relay
// runs in a child process on the GPIO simulator and reports every pin change; this
// process plays the relay module on the pin (WatchdogRelayModel, "what the hardware would
// do") and kills the child mid-hold.
//   pulse drive (default): the edges stop with the process, the watchdog relay drops —
//     the car is released with no software running;
//   level drive: the pin stays where it was — the car would stay held. That is why
//     check-config warns about it and the default is pulse.
import t from 'tap';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WatchdogRelayModel } from '../../edge/elevator/relay.js';

const CHILD = fileURLToPath(new URL('./relay-child.ts', import.meta.url));
const WATCHDOG_MS = 200;

interface Msg {
  line?: number;
  value?: boolean;
  at?: number;
  held?: boolean;
}

async function holdThenKill(drive: 'pulse' | 'level') {
  const hw = new WatchdogRelayModel(drive, WATCHDOG_MS);
  let edges = 0;
  const child: ChildProcess = fork(CHILD, [drive], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('message', (m: Msg) => {
    if (m.line === 17 && m.value !== undefined && m.at !== undefined) {
      hw.edge(m.value, m.at);
      edges++;
    }
  });
  const held = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the relay child did not hold within 20 s (tsx missing?)')), 20_000);
    child.on('message', (m: Msg) => {
      if (m.held) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`relay child exited early (${code})`)));
  });
  await held;
  // Let it hold a while (several pulses).
  await new Promise((r) => setTimeout(r, 400));
  const beforeKill = { energised: hw.energised(Date.now()), edges };
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
  child.kill('SIGKILL');
  const signal = await exited;
  const killedAt = Date.now();
  const edgesAtKill = edges;
  await new Promise((r) => setTimeout(r, WATCHDOG_MS + 150));
  return { beforeKill, signal, edgesAfterKill: edges - edgesAtKill, energisedAfter: hw.energised(killedAt + WATCHDOG_MS + 100) };
}

t.test('pulse drive: SIGKILL while holding → the watchdog relay releases the car', async (t) => {
  const r = await holdThenKill('pulse');
  t.ok(r.beforeKill.energised, 'held before the kill');
  t.ok(r.beforeKill.edges >= 4, `the pin was toggling (${r.beforeKill.edges} edges)`);
  t.equal(r.signal, 'SIGKILL');
  t.equal(r.edgesAfterKill, 0, 'no edge after the kill');
  t.notOk(r.energisedAfter, 'released within the watchdog time, with no process left');
});

t.test('level drive: SIGKILL while holding leaves the pin active (the hazard check-config warns about)', async (t) => {
  const r = await holdThenKill('level');
  t.ok(r.beforeKill.energised);
  t.equal(r.signal, 'SIGKILL');
  t.ok(r.energisedAfter, 'a level-driven relay stays where the dead process left it');
});
