// Host figures for the status report and the console: load, memory, disk, clock.
import { statfsSync } from 'node:fs';
import { loadavg, totalmem, freemem, uptime as hostUptime } from 'node:os';

export interface SystemStats {
  load1: number;
  memTotalMB: number;
  memFreeMB: number;
  rssMB: number;
  diskFreeMB: number | null;
  diskTotalMB: number | null;
  hostUptimeS: number;
}

export function systemStats(dataDir: string): SystemStats {
  let diskFreeMB: number | null = null;
  let diskTotalMB: number | null = null;
  try {
    const s = statfsSync(dataDir);
    diskFreeMB = Math.round((s.bavail * s.bsize) / 1048576);
    diskTotalMB = Math.round((s.blocks * s.bsize) / 1048576);
  } catch {
    /* data dir not there yet */
  }
  return {
    load1: Math.round(loadavg()[0]! * 100) / 100,
    memTotalMB: Math.round(totalmem() / 1048576),
    memFreeMB: Math.round(freemem() / 1048576),
    rssMB: Math.round(process.memoryUsage.rss() / 1048576),
    diskFreeMB,
    diskTotalMB,
    hostUptimeS: Math.round(hostUptime()),
  };
}
