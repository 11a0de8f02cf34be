// One tap on the logger's destination stream, shared by the console's in-memory tail
// (edge/console/logring.ts) and the on-disk ring (logfile.ts): each sees exactly what
// journald gets, with no second logger and no change to how the service logs.
import { symbols, type Logger } from 'pino';

/**
 * Tee the logger's destination: every line written to it is passed to `onLine` first
 * (a throw there is swallowed: a tap must never break logging). Returns the function
 * that removes the tap, or undefined when the logger has no stream to tap.
 */
export function tapLogStream(log: Logger, onLine: (line: string) => void): (() => void) | undefined {
  // `as unknown as`: pino keeps its destination under a symbol its types do not declare
  // (pino.symbols.streamSym); the check below handles a pino without it.
  const stream = (log as unknown as Record<symbol, { write: (s: string) => unknown } | undefined>)[symbols.streamSym];
  if (!stream || typeof stream.write !== 'function') return undefined;
  const original = stream.write;
  const own = Object.hasOwn(stream, 'write');
  stream.write = (s: string) => {
    try {
      onLine(String(s));
    } catch {
      /* never let a tap break logging */
    }
    return original.call(stream, s);
  };
  return () => {
    if (own) stream.write = original;
    else delete (stream as { write?: unknown }).write;
  };
}
