// The pymodbus pile peer (pile_peer.py) and the gateway config that uses it, shared by
// test/charging/e2e.test.ts and scripts/bench-charging.ts.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function pilePeer(dev: string) {
  const proc = spawn('/usr/bin/python3', [join(here, 'pile_peer.py'), dev], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  await waitFor(() => out.includes('READY') || proc.exitCode !== null, 15_000, 'pymodbus pile peer READY').catch((e) => {
    throw new Error(`${e.message}: ${err}`);
  });
  if (proc.exitCode !== null) throw new Error(/No module named 'pymodbus'/.test(err) ? 'pile peer cannot start: python3-pymodbus is not installed for /usr/bin/python3' : `pile peer exited: ${err}`);
  return {
    send: async (cmd: object) => {
      const n = (out.match(/^OK$/gm) ?? []).length;
      proc.stdin.write(`${JSON.stringify(cmd)}\n`);
      await waitFor(() => (out.match(/^OK$/gm) ?? []).length > n, 5000, 'peer OK');
    },
    stop: () => {
      proc.stdin.end();
      proc.kill('SIGTERM');
    },
  };
}

export const thresholds = { startW: 10, taperW: 30, fullAfterS: 1, maxW: 1000, overPowerS: 0.5, maxHours: 10 };

export function pileConfig(port: string, extra: Record<string, unknown> = {}) {
  return {
    meters: {
      buses: [
        {
          id: 'pile-line',
          protocol: 'modbus',
          port,
          timeoutMs: 150,
          offlineAfter: 2,
          backoffBaseMs: 500,
          devices: [
            { id: 'meter-a', profile: 'eastron-sdm630-3ch', address: 1, pollIntervalMs: 100 },
            { id: 'relays-a', profile: 'modbus-relay-8ch', address: 2, pollIntervalMs: 100 },
          ],
        },
      ],
    },
    charging: {
      meterStaleS: 3,
      relayRetries: 2,
      piles: [
        {
          id: 'shed-1',
          thresholds,
          smoke: [{ kind: 'gpio', pin: 5, activeLow: false }],
          ports: [0, 1, 2].map((i) => ({ id: `p${i + 1}`, meter: { device: 'meter-a', power: `power_${i + 1}`, energy: `energy_${i + 1}` }, relay: { kind: 'modbus', device: 'relays-a', coil: i } })),
        },
      ],
      ...extra,
    },
  };
}
