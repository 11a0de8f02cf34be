// Child process of safe-state.test.ts: a relay held the way the elevator module holds it,
// on the GPIO simulator, every pin change reported to the parent (the "logic analyser"
// on the relay input). The parent kills this process with SIGKILL.
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { realTimers } from '../../drivers/gpio/types.js';
import { HoldRelay } from '../../edge/elevator/relay.js';

const drive = process.argv[2] === 'level' ? 'level' : 'pulse';
const gpio = new SimulatedGpio({ timers: realTimers });
gpio.onOutput = (line, c) => process.send?.({ line, value: c.value, at: c.at });
const relay = new HoldRelay({ pin: 17, activeLow: false, drive, pulseMs: 50, label: 'car A door hold' }, realTimers);
await relay.open(gpio);
relay.hold();
process.send?.({ held: true });
// Stay alive until killed.
setInterval(() => {}, 1000);
