// Rate-limited logging for conditions that repeat on every write while they last (a full
// disk): the first occurrence is logged at once, then at most one line per interval
// carrying how many were suppressed, so a fault cannot fill the journal (or the disk
// it is about) with the same line thousands of times.
export class LogThrottle {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Call `emit(suppressedSinceLast)` if a line may be written now; otherwise count it. */
  run(emit: (suppressed: number) => void): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const n = this.suppressed;
    this.suppressed = 0;
    this.last = t;
    emit(n);
  }
}
