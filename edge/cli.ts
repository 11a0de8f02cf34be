// The `estate-edge` command (entry: edge/main.ts).
//   estate-edge [run] [--config PATH]     run the gateway (default)
//   estate-edge check-config [--config PATH]
//   estate-edge doctor [--config PATH] [--json]
//   estate-edge setup-token [--config PATH] [--json] [--svg FILE]
// An invalid config exits with status 2 before anything starts, listing every problem.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { loadConfig, ConfigError, type LoadedConfig } from './config/load.js';
import { createLogger } from './log.js';
import { Gateway } from './gateway.js';
import { LogFile } from './observability/logfile.js';
import { DirError } from './store/dirs.js';
import { referencedPathProblems } from './config/files.js';
import { rollbackUnloadableApply } from './config/apply.js';
import { SystemdNotifier, installDebugLoopBlocker } from './systemd/notify.js';
import { holdSignals, releaseSignals, restoreDefaultSignals } from './signals.js';

export const EXIT_CONFIG = 2;
export const EXIT_CRASH = 1;
/** Not an exit status: `run` returns it when the gateway stopped to start again in this process (a config change). */
const RELOAD = -1;

function usage(): string {
  return `usage: estate-edge [run|check-config|doctor|setup-token] [--config PATH]

  run            run the gateway (default). Without --config, /etc/estate-edge/config.yaml
                 is used if it exists, else the built-in simulated estate.
  check-config   validate the configuration and exit (0 = valid, 2 = invalid)
  doctor         check config, data dir, disk, clock, broker, serial ports, GPIO, camera,
                 models and the service; one OK/WARN/FAIL line each (exit 1 on FAIL).
                 --json prints the findings as JSON.
  setup-token    the console's one-time setup token (made if there is none or it expired)
                 with its address and a QR code to scan with a phone; --svg FILE also
                 writes the QR code as SVG (a label); --json for scripts.
`;
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, svg: { type: 'string' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage()}`);
    return EXIT_CONFIG;
  }
  if (parsed.values.help) {
    process.stdout.write(usage());
    return 0;
  }
  const cmd = parsed.positionals[0] ?? 'run';
  // Only `run` stops gracefully: the other commands end by a signal as any tool does.
  if (cmd !== 'run') restoreDefaultSignals();
  // The doctor reports an invalid config as one of its findings, so it loads it itself.
  if (cmd === 'doctor') return doctor(parsed.values.config, parsed.values.json === true);
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(parsed.values.config !== undefined ? { path: parsed.values.config } : {});
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`estate-edge: ${err.message}\n`);
      // A change applied from the console that does not load: back to the previous file.
      if (cmd === 'run' && rollbackUnloadableApply(err.source, err.problems.join('; '))) {
        process.stderr.write(`estate-edge: restored the previous configuration (${err.source}.bak)\n`);
        return main(argv);
      }
      return EXIT_CONFIG;
    }
    // Anything else while loading is still a bad configuration, never a stack trace.
    process.stderr.write(`estate-edge: cannot load the configuration: ${String((err as Error)?.message ?? err).split('\n')[0]}\n`);
    return EXIT_CONFIG;
  }
  // Files and directories the config names: checked before anything starts, for run too.
  const pathProblems = cmd === 'check-config' || cmd === 'run' ? referencedPathProblems(loaded.config) : [];
  if (pathProblems.length) {
    process.stderr.write(`estate-edge: invalid configuration (${loaded.source}):\n  ${pathProblems.join('\n  ')}\n`);
    return EXIT_CONFIG;
  }
  if (cmd === 'setup-token') return setupToken(loaded, parsed.values.json === true, parsed.values.svg);
  if (cmd === 'check-config') {
    for (const w of loaded.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`configuration ${loaded.source} is valid (revision ${loaded.revision})${loaded.warnings?.length ? `, with ${loaded.warnings.length} warning(s)` : ''}\n`);
    return 0;
  }
  if (cmd !== 'run') {
    process.stderr.write(`unknown command "${cmd}"\n${usage()}`);
    return EXIT_CONFIG;
  }
  const code = await run(loaded);
  // A config change: load the file again and start a new gateway in this process.
  return code === RELOAD ? main(argv) : code;
}

async function run(loaded: LoadedConfig): Promise<number> {
  const log = createLogger(loaded.config.log.level);
  // The bounded on-disk ring of our own lines (logs.get), from the first line of the start on.
  const logRing = new LogFile(join(resolve(loaded.config.gateway.dataDir), 'logs'));
  logRing.attach(log);
  if (loaded.source === 'embedded') log.warn('no configuration file: running the built-in simulated estate (data in ./var)');
  // sd_notify (Type=notify unit): a no-op when not started by systemd.
  const notifier = new SystemdNotifier({ log });
  installDebugLoopBlocker(process.env, log);
  let exitCode = 0;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  const gateway = new Gateway({
    loaded,
    log,
    logRing,
    onRestartRequested: (reason, how) => void shutdown(`restart requested: ${reason}`, how === 'reload' ? RELOAD : 0),
  });

  let stopping = false;
  const shutdown = async (reason: string, code: number) => {
    // Already stopping: a SIGTERM during a reload's stop makes it a real stop (exit 0), a
    // crash during any stop makes the exit a crash; nothing turns a stop into a reload.
    if (stopping) {
      if (code !== RELOAD && (exitCode === RELOAD || exitCode === 0)) exitCode = code;
      return;
    }
    stopping = true;
    exitCode = code;
    // RELOADING=1 … READY=1 (from the next run) is systemd's reload protocol: the unit stays
    // active, where STOPPING=1 would have it wait for the process to exit.
    void (code === RELOAD ? notifier.reloading(`reloading: ${reason}`) : notifier.stopping(`stopping: ${reason}`));
    const hard = setTimeout(() => {
      log.error('graceful shutdown took too long: exiting');
      resolveExit(exitCode === 0 || exitCode === RELOAD ? 1 : exitCode);
    }, loaded.config.gateway.shutdownTimeoutMs + 2000);
    hard.unref();
    try {
      await gateway.stop(reason);
    } catch (err) {
      log.error({ err }, 'error while stopping');
    }
    clearTimeout(hard);
    resolveExit(exitCode);
  };

  const onTerm = () => void shutdown('SIGTERM', 0);
  const onInt = () => void shutdown('SIGINT', 0);
  const onCrash = (err: unknown) => {
    log.fatal({ err }, 'uncaught exception: putting hardware in its safe state and exiting');
    gateway.emergencyStop();
    void shutdown('crash', EXIT_CRASH);
  };
  // Logged, not fatal: a stray rejected promise must not take the doors down.
  const onRejection = (err: unknown) => log.error({ err }, 'unhandled promise rejection');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onRejection);
  // A SIGTERM while the code was loading (edge/signals.ts): stop before anything starts.
  // One that is still on its way (a signal is handled when the event loop polls, and
  // loading the code does not let it) reaches shutdown() in this turn of the loop; either
  // way gateway.start() then starts nothing.
  const early = releaseSignals();
  if (early) void shutdown(early, 0);
  await new Promise<void>((r) => setImmediate(r));

  try {
    await gateway.start();
  } catch (err) {
    if (err instanceof DirError) {
      // A data directory that cannot be used is a configuration problem, not a crash.
      process.stderr.write(`estate-edge: gateway.dataDir: ${err.message}\n`);
      await gateway.stop('start failed').catch(() => {});
      return EXIT_CONFIG;
    }
    log.fatal({ err }, 'gateway failed to start');
    gateway.emergencyStop();
    await gateway.stop('start failed').catch(() => {});
    return EXIT_CRASH;
  }
  // SIGTERM during start-up: start() returned early and shutdown() is under way.
  if (!gateway.isStarted()) return finishRun(await exited);
  // READY only now: every module has started (or failed and been reported) and the
  // health endpoint listens. The watchdog pings come from this event loop from here on.
  await notifier.ready(gatewayStatus(gateway));
  notifier.startWatchdog(() => gatewayStatus(gateway));
  return finishRun(await exited);

  async function finishRun(code: number): Promise<number> {
    await notifier.flush();
    notifier.stopWatchdog();
    log.flush?.();
    logRing.detach();
    if (code === RELOAD) {
      // Until the next run takes them over, a SIGTERM is held (and acted on at once by it).
      holdSignals();
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onRejection);
    }
    return code;
  }
}

async function doctor(configPath: string | undefined, json: boolean): Promise<number> {
  const { runDoctor, formatReport, doctorExitCode } = await import('./doctor.js');
  const findings = await runDoctor(configPath !== undefined ? { configPath } : {});
  process.stdout.write(json ? `${JSON.stringify(findings, null, 2)}\n` : formatReport(findings, `estate-edge doctor  ${new Date().toISOString()}`));
  return doctorExitCode(findings);
}

async function setupToken(loaded: LoadedConfig, json: boolean, svg: string | undefined): Promise<number> {
  const { ensureSetupToken, setupTokenPath, setupLabel, setupUrl, consoleUrls, qrSvg } = await import('./console/setup-token.js');
  const { resolve } = await import('node:path');
  const { writeFileSync } = await import('node:fs');
  if (!loaded.config.console.enabled) {
    process.stderr.write('estate-edge: the console is disabled (console.enabled: false)\n');
    return 1;
  }
  const s = ensureSetupToken(setupTokenPath(resolve(loaded.config.gateway.dataDir)), Date.now());
  const urls = consoleUrls(loaded.config.console);
  if (svg && s.state === 'pending') writeFileSync(svg, qrSvg(setupUrl(urls[0] ?? 'http://<box>:8080', s.token)));
  process.stdout.write(json ? `${JSON.stringify({ ...s, urls, ...(s.state === 'pending' ? { setupUrl: setupUrl(urls[0] ?? '', s.token) } : {}) })}\n` : setupLabel(s, urls));
  return 0;
}

/** One line for `systemctl status`: what a technician wants to see first. */
function gatewayStatus(gateway: Gateway): string {
  if (!gateway.isStarted()) return 'starting';
  const health = gateway.healthReport();
  const bad = Object.entries(health)
    .filter(([, h]) => !h.ok)
    .map(([name]) => name);
  return bad.length ? `running, degraded: ${bad.join(', ')}` : `running, ${Object.keys(health).length} parts ok`;
}
