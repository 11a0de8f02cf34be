// The built-in simulated estate: what the gateway runs when there is no config file and
// no hardware (a demo, a developer laptop, a box before its installer has been). It is
// a raw config object; it goes through exactly the same validation as a file.
import { simulatedVisionConfig } from '../vision/simulation.js';

export function simulatedEstateConfig(): Record<string, unknown> {
  // Face access at the gate, on the demo video, when the models and the video are present.
  const vision = simulatedVisionConfig('gate');
  return {
    ...(vision ? { vision } : {}),
    site: { id: 'sim-estate', name: '模拟小区 (simulated estate)' },
    gateway: { id: 'sim-gw', dataDir: './var' },
    uplink: { url: 'mqtt://127.0.0.1:1883' },
    simulation: { enabled: true },
    // Simulated meters (edge/meters/simulated.ts): in-process wires that take real wire time.
    meters: {
      buses: [
        {
          id: 'sim-modbus',
          protocol: 'modbus',
          transport: 'simulated',
          baudRate: 9600,
          timeoutMs: 300,
          devices: [
            { id: 'riser-a', name: 'A栋总表 (building A riser, SDM630)', profile: 'eastron-sdm630', address: 1, pollIntervalMs: 5000, deadband: { voltage_l1: 1, voltage_l2: 1, voltage_l3: 1 } },
            { id: 'pump-room', name: '水泵房 (pump room, SDM120)', profile: 'eastron-sdm120', address: 2, pollIntervalMs: 5000 },
          ],
        },
        {
          id: 'sim-dlt645',
          protocol: 'dlt645',
          transport: 'simulated',
          baudRate: 2400,
          parity: 'even',
          timeoutMs: 500,
          devices: [
            { id: 'flat-a101', name: 'A101', profile: 'dlt645-2007-single', address: '000000000101', pollIntervalMs: 10000 },
            { id: 'flat-a102', name: 'A102 (old meter)', profile: 'dlt645-1997', address: '000000000102', pollIntervalMs: 10000 },
          ],
        },
        {
          id: 'sim-water',
          protocol: 'cjt188',
          transport: 'simulated',
          baudRate: 2400,
          parity: 'even',
          timeoutMs: 500,
          devices: [{ id: 'water-a101', name: 'A101 water', profile: 'cjt188-water', address: '00000000000101', pollIntervalMs: 30000 }],
        },
      ],
    },
    doors: {
      gpio: { backend: 'simulated' },
      fire: { input: { pin: 26 } },
      groups: [
        { id: 'residents-a', name: 'Building A residents', doors: ['gate', 'bldg-a'] },
        { id: 'residents-b', name: 'Building B residents', doors: ['gate', 'bldg-b'] },
        { id: 'staff', name: 'Property staff', doors: ['gate', 'bldg-a', 'bldg-b'] },
      ],
      doors: [
        { id: 'gate', name: '小区大门 (estate gate)', lock: { pin: 17 }, contact: { pin: 27 }, exitButton: { pin: 22 }, led: { pin: 5 }, unlockMs: 4000 },
        { id: 'bldg-a', name: 'A栋 (building A)', lock: { pin: 23 }, contact: { pin: 24 }, exitButton: { pin: 25 }, buzzer: { pin: 6 } },
        { id: 'bldg-b', name: 'B栋 (building B, maglock)', lock: { pin: 16, failMode: 'failSafe' }, contact: { pin: 20 }, exitButton: { pin: 21 }, buzzer: { pin: 13 } },
      ],
    },
  };
}
