// The built-in simulated estate: what the gateway runs when there is no config file and
// no hardware (a demo, a developer laptop, a box before its installer has been). It is
// a raw config object; it goes through exactly the same validation as a file.
export function simulatedEstateConfig(): Record<string, unknown> {
  return {
    site: { id: 'sim-estate', name: '模拟小区 (simulated estate)' },
    gateway: { id: 'sim-gw', dataDir: './var' },
    uplink: { url: 'mqtt://127.0.0.1:1883' },
    simulation: { enabled: true },
  };
}
