// Which frame the pipeline analyses when the inference worker becomes free.
//
// The camera keeps only its newest frame. Analysis (detect, liveness, align, embed) takes
// longer than a frame interval, so when the worker is free again the newest frame is, on
// average, half an interval old — time the person has already waited, counted in
// frame → decision (bench:vision part 4 measured ~45 ms of it at 10 fps). When the newest
// frame is older than half an interval, the next one is due sooner than that frame's age:
// waiting for it gives a decision on what the camera sees now, for a throughput cost of at
// most half an interval per analysis. A camera that delivers slower than configured
// (an RTSP stream at 5 fps) is not starved: after one interval without a newer frame the
// older one is analysed anyway.

/** What to do with the newest frame, `ageMs` old, at `fps` frames per second. */
export function pace(ageMs: number, fps: number): { take: true } | { take: false; waitMs: number } {
  const interval = 1000 / fps;
  if (!(ageMs > interval / 2)) return { take: true };
  return { take: false, waitMs: Math.max(1, Math.ceil(interval)) };
}
