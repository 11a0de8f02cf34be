// Contract of the charging capability towards the console and the platform: the status
// shape (charging.status), and the bus events it emits for live pages.
export type PortState = 'idle' | 'charging' | 'off' | 'fault';

/** Why a session ended (or a port was switched off). */
export type EndReason = 'full' | 'over_power' | 'over_time' | 'fire' | 'stop' | 'fault' | 'shutdown';

export type ChargingAlarmKind = 'fire' | 'over_power' | 'fault';

export interface SessionRecord {
  /** Unique id of the session (the platform bills by it). */
  id: string;
  pile: string;
  port: string;
  /** UTC ms. */
  start: number;
  end: number;
  kWh: number;
  /** meter: difference of the port's energy counter; integrated: from the power readings. */
  energySource: 'meter' | 'integrated';
  peakW: number;
  endReason: EndReason;
}

export interface PortStatus {
  pile: string;
  port: string;
  state: PortState;
  /** UTC ms of the last state change. */
  since: number;
  powerW: number | null;
  /** UTC ms of the last reading of the port's meter channel. */
  readingAt: number | null;
  relay: { kind: 'modbus' | 'gpio'; on: boolean | null; where: string };
  session?: { id: string; start: number; kWh: number; peakW: number };
  lastEnd?: { reason: EndReason; at: number };
  fault?: string;
}

export interface PileStatus {
  id: string;
  name?: string;
  fire: { active: boolean; since?: number; inputs: Array<{ input: string; active: boolean }> };
  ports: PortStatus[];
}

export interface ChargingStatus {
  piles: PileStatus[];
  counters: { sessions: number; cuts: Record<string, number>; writeRetries: number; faults: number };
}

export interface ChargingApi {
  status(): ChargingStatus;
}

declare module '../module.js' {
  interface Services {
    charging: ChargingApi;
  }
}

declare module '../bus.js' {
  interface BusEvents {
    'charging.port': PortStatus & { cause: string };
    'charging.session': SessionRecord;
    'charging.alarm': { alarm: ChargingAlarmKind; pile: string; port?: string; active: boolean; message: string; at: number };
  }
}
