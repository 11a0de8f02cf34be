// SIGTERM/SIGINT that arrive while the gateway's code is still loading. Evaluating the
// bundle takes over a second on a busy box (1.2 s measured on the CI machine), and until
// the CLI installs its handlers Node's default would kill the process by the signal: no
// "gateway stopped", no exit 0. The entry (edge/main.ts) holds them from its first line;
// `run` takes them over once its own handlers are in place and stops at once, every other
// command gets the default behaviour back (and a held signal re-raised). No imports: this
// must be evaluated before anything heavy.
let held: NodeJS.Signals | undefined;
const hold = (signal: NodeJS.Signals) => void (held ??= signal);

export function holdSignals(): void {
  process.on('SIGTERM', hold);
  process.on('SIGINT', hold);
}

/** Stop holding; the signal that arrived meanwhile, if any. */
export function releaseSignals(): NodeJS.Signals | undefined {
  process.off('SIGTERM', hold);
  process.off('SIGINT', hold);
  const s = held;
  held = undefined;
  return s;
}

/** Stop holding and deliver a held signal the default way (the process ends by it). */
export function restoreDefaultSignals(): void {
  const s = releaseSignals();
  if (s) process.kill(process.pid, s);
}
