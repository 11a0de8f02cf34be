// The built-in simulated estate: what the gateway runs when there is no config file and
// no hardware (a demo, a developer laptop, a box before its installer has been). It is
// a raw config object; it goes through exactly the same validation as a file.
export function simulatedEstateConfig(): Record<string, unknown> {
  return {
    site: { id: 'sim-estate', name: '模拟小区 (simulated estate)' },
    gateway: { id: 'sim-gw', dataDir: './var' },
    uplink: { url: 'mqtt://127.0.0.1:1883' },
    simulation: { enabled: true },
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
