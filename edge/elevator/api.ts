// Contract of the elevator capability towards the console: the `elevator` service (its
// presence means the blocker runs on this box; the console's elevator page is configured
// by it) with the status and a car camera's newest frame.
import type { ElevatorSnapshot, ElevatorStatusResult } from '../console/api-types.js';

export interface ElevatorApi {
  status(): ElevatorStatusResult;
  /**
   * The newest frame of a car's camera as a JPEG of at most `elevator.snapshot.maxBytes`
   * (quality, then size lowered until it fits); undefined before the first frame or when no
   * JPEG that small can be made. Throws CommandError unknown_car for an unknown car.
   */
  snapshot(carId: string): Promise<ElevatorSnapshot | undefined>;
}

declare module '../module.js' {
  interface Services {
    elevator: ElevatorApi;
  }
}
