// CommonJS packages are loaded with require(), not `import`, on every path a box runs.
//
// Why: Node 20's ESM loader, given `import x from 'cjs-package'`, scans the package's
// source for its export names (cjs-module-lexer) and, for TypeScript-compiled packages
// that re-export (`__exportStar(require('./lib/client'), exports)`), follows every
// re-exported file. That transient work peaks at ~10 MB of malloc'd memory for mqtt and
// ~5 MB each for serialport, modbus-serial and fastify, and glibc keeps most of it
// resident afterwards. Measured on this machine (Node 20.20, RSS after a full GC):
// `import('mqtt')` 60.3 MB, `createRequire(...)('mqtt')` 52.4 MB, bare node 42.7 MB.
// On a box with a 60 MB budget that is the difference that matters.
//
// Types are unaffected: callers cast to `typeof import('pkg')`, a type-only import.
import { createRequire } from 'node:module';

export const requireCjs = createRequire(import.meta.url);
