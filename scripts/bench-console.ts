// npm run bench:console — the console's cost on the box, each figure beside its budget:
//
//   rss          RSS added by the console: the same gateway (core + simulated meters and
//                doors) in two child processes, without and with the console; the one with
//                the console sees 8 logins, 200 dashboard requests and 3 live streams
//                before RSS is read (after a forced GC, median of 3 reads; median of 3
//                children per configuration). Measured with
//                glibc's default malloc and with MALLOC_MMAP_THRESHOLD_ fixed at 1 MiB
//                (without it each thread-pool thread keeps a freed 16 MiB scrypt buffer).
//                Budget ≤ 25 MB.
//   page weight  bytes on the wire (brotli, as served) of the page the production bundle
//                serves (scripts/bundle.ts): for the first render (index.html and what it
//                loads: styles, icon, app.js) and for every file of every page. Budget ≤ 300 KB.
//   first render Chromium (Debian's) on loopback, logged in, against the production bundle
//                built and run as the unit runs it (the page a box serves: one minified
//                script): navigation start → dashboard drawn with data (its DOM in the
//                page), median of 7 loads; also with the CPU slowed 4× (a mid-range phone).
//                Budget ≤ 1 s. Shown beside it: when that frame has been laid out and
//                painted (the task after its animation frame), and Chromium's
//                largest-contentful-paint with the element it chose.
import { spawn } from 'node:child_process';
import { loadavg, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { join } from 'node:path';
import { loadAssets, compressedWeight } from '../edge/console/assets.js';
import { startBundledConsole, writeConfig, estateConfig, CHROMIUM_ARGS, Client, PASSWORDS } from '../test/console/helpers.js';
import { loadConfig } from '../edge/config/load.js';
import { Gateway } from '../edge/gateway.js';
import { createLogger } from '../edge/log.js';
import { tempDir } from '../test/helpers/gateway.js';
import { Broker } from '../test/helpers/broker.js';
import { metersModule } from '../edge/meters/module.js';
import { createDoorsModule } from '../edge/doors/module.js';
import { consoleModule } from '../edge/console/module.js';

const SELF = fileURLToPath(import.meta.url);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MB = (b: number) => (b / 1048576).toFixed(1);

/** Child: run a gateway with or without the console, exercise it, print RSS in bytes. */
async function child(withConsole: boolean, brokerUrl: string): Promise<void> {
  const dir = tempDir('ee-bench-console-');
  const cfg = estateConfig(dir, brokerUrl);
  if (!withConsole) cfg.console = { enabled: false };
  const path = `${dir}/config.yaml`;
  writeConfig(path, cfg);
  let setupToken = '';
  const log = createLogger('warn', {
    write: (line: string) => {
      setupToken ||= /"setupToken":"([^"]+)"/.exec(line)?.[1] ?? '';
      return true;
    },
  });
  const modules = [metersModule, createDoorsModule];
  const gateway = new Gateway({ loaded: loadConfig({ path }), log, modules: withConsole ? [...modules, consoleModule] : modules });
  await gateway.start();
  const aborts: AbortController[] = [];
  if (withConsole) {
    const base = (gateway.healthReport().console!.detail as { url: string }).url.replace(/\/$/, '');
    const admin = new Client(base);
    const r = await admin.post('/api/setup', { token: setupToken, user: 'admin', password: PASSWORDS.admin });
    if (r.status !== 201) throw new Error(`setup failed: ${r.status}`);
    // A technician's visit: a few logins (each an scrypt hash of 16 MiB), then pages.
    for (let i = 0; i < 8; i++) await new Client(base).login('admin', PASSWORDS.admin);
    for (let i = 0; i < 200; i++) await admin.get('/api/dashboard');
    for (let i = 0; i < 3; i++) {
      const ac = new AbortController();
      aborts.push(ac);
      const res = await fetch(`${base}/api/live`, { headers: { cookie: admin.cookie }, signal: ac.signal });
      void res
        .body!.getReader()
        .read()
        .catch(() => {});
    }
  }
  await new Promise((r) => setTimeout(r, 3000));
  const reads: number[] = [];
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 300));
    reads.push(process.memoryUsage.rss());
  }
  process.stdout.write(`RSS ${median(reads)}\n`);
  for (const a of aborts) a.abort();
  await gateway.stop();
}

async function runChild(withConsole: boolean, brokerUrl: string, mallocFixed: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    // Compiled JS (npm run bench:console builds first), as the service runs: a TypeScript
    // loader in the children would add its own memory to the figures.
    const loader = SELF.endsWith('.ts') ? ['--import', 'tsx'] : [];
    // Node flags as in systemd/estate-edge.service. glibc's malloc keeps a freed 16 MiB
    // scrypt buffer per thread-pool arena unless the mmap threshold is fixed, so the RSS
    // is measured both ways.
    const env = { ...process.env };
    if (mallocFixed) env.MALLOC_MMAP_THRESHOLD_ = '1048576';
    else delete env.MALLOC_MMAP_THRESHOLD_;
    const p = spawn(process.execPath, ['--expose-gc', '--max-semi-space-size=2', ...loader, SELF, '--child', withConsole ? 'with' : 'without', brokerUrl], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => {
      const m = /RSS (\d+)/.exec(out);
      if (code === 0 && m) resolve(Number(m[1]));
      else reject(new Error(`child exited ${code}: ${out}`));
    });
  });
}

interface Render {
  /** Each figure's 7 loads, sorted: median and range are printed. */
  ms: number[];
  painted: number[];
  lcp: number[];
  /** The elements Chromium took for the largest contentful paint, with how many loads each. */
  lcpElement: string;
  transfer: number;
}

async function firstRender(): Promise<{ fast: Render; slow: Render; weights: { first: number; all: number; raw: number } }> {
  const broker = await Broker.start();
  const dir = tempDir('ee-bench-render-');
  const g = await startBundledConsole(dir, estateConfig(dir, broker.url));
  const assets = loadAssets(join(g.outdir, 'console-web'));
  const admin = new Client(g.base);
  await admin.post('/api/setup', { token: g.setupToken(), user: 'admin', password: PASSWORDS.admin });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const [name, value] = admin.cookie.split('=');
  const measure = async (throttle: number): Promise<Render> => {
    const times: number[] = [];
    const painted: number[] = [];
    const lcps: number[] = [];
    const lcpElements: string[] = [];
    let transfer = 0;
    for (let i = 0; i < 7; i++) {
      // A fresh context each time: nothing cached, as on a phone's first visit.
      const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
      await ctx.addCookies([{ name: name!, value: value!, url: g.base }]);
      const page = await ctx.newPage();
      const cdp = await ctx.newCDPSession(page);
      if (throttle > 1) await cdp.send('Emulation.setCPUThrottlingRate', { rate: throttle });
      await page.goto(`${g.base}/`);
      // Wait for the dashboard with a plain evaluation: Playwright's selector engine is a
      // large script compiled in the page, on the main thread the figures are about.
      const done = (await cdp.send('Runtime.evaluate', {
        expression: `new Promise((resolve) => {
          const ok = () => document.body.dataset.rendered === 'dashboard' && document.body.dataset.firstPaintMs;
          if (ok()) return resolve(true);
          const o = new MutationObserver(() => ok() && (o.disconnect(), resolve(true)));
          o.observe(document.body, { attributes: true });
          setTimeout(() => (o.disconnect(), resolve(false)), 20000);
        })`,
        awaitPromise: true,
        returnByValue: true,
      })) as { result: { value?: boolean } };
      if (done.result.value !== true) throw new Error('dashboard not drawn within 20 s');
      // Runs in the browser (the project is compiled without the DOM library, hence a string).
      const r = (await page.evaluate(`({
        t: Number(document.body.dataset.firstRenderMs),
        p: Number(document.body.dataset.firstPaintMs),
        bytes: performance.getEntriesByType('resource').filter((e) => !e.name.includes('/api/')).reduce((n, e) => n + e.transferSize, 0) + (performance.getEntriesByType('navigation')[0]?.transferSize ?? 0),
      })`)) as { t: number; p: number; bytes: number };
      // Largest contentful paint (Chrome's own record of when the main content was painted).
      const lcp = (await page.evaluate(`new Promise((resolve) => {
        const name = (el) => el ? el.tagName.toLowerCase() + (el.dataset.testid ? '[' + el.dataset.testid + ']' : '') + (el.closest('main') ? ' in the dashboard' : ' outside the dashboard') : '?';
        new PerformanceObserver((l) => { const e = l.getEntries().at(-1); resolve({ t: e.startTime, el: name(e.element) }); }).observe({ type: 'largest-contentful-paint', buffered: true });
        setTimeout(() => resolve({ t: NaN, el: 'none' }), 3000);
      })`)) as { t: number; el: string };
      lcps.push(lcp.t);
      lcpElements.push(lcp.el);
      times.push(r.t);
      painted.push(r.p);
      transfer = r.bytes;
      await ctx.close();
    }
    const lcpElement = [...new Set(lcpElements)]
      .map((e) => [e, lcpElements.filter((x) => x === e).length] as const)
      .sort((a, b) => b[1] - a[1])
      .map(([e, n]) => `${e} (${n} of ${lcpElements.length})`)
      .join(', ');
    const sorted = (xs: number[]) => xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    return { ms: sorted(times), painted: sorted(painted), lcp: sorted(lcps), lcpElement, transfer };
  };
  const fast = await measure(1);
  const slow = await measure(4);
  await browser.close();
  await g.stop();
  await broker.stop();
  // The first render's files: the page and what it links (styles, icon, the one script).
  const html = assets.get('/index.html')!.raw.toString('utf8');
  const firstSet = ['/index.html', ...[...html.matchAll(/(?:href|src)="(\/[^"]+)"/g)].map((m) => m[1]!)];
  const weights = { first: compressedWeight(assets, firstSet), all: compressedWeight(assets), raw: [...assets.values()].reduce((n, a) => n + a.raw.length, 0) };
  return { fast, slow, weights };
}

async function main(): Promise<void> {
  // --render-only: page weight and first render, without the RSS children (a quicker
  // run, e.g. to repeat the render timing when the machine is quiet).
  const renderOnly = process.argv.includes('--render-only');
  const broker = await Broker.start();
  // Three children per configuration, alternating, medians: one child's RSS varies by
  // several MB with when V8 last collected.
  const runs = { without: [] as number[], withC: [] as number[], withoutFixed: [] as number[], withFixed: [] as number[] };
  for (let i = 0; i < (renderOnly ? 0 : 3); i++) {
    runs.withoutFixed.push(await runChild(false, broker.url, true));
    runs.withFixed.push(await runChild(true, broker.url, true));
    runs.without.push(await runChild(false, broker.url, false));
    runs.withC.push(await runChild(true, broker.url, false));
  }
  const [without, withC, withoutFixed, withFixed] = [median(runs.without), median(runs.withC), median(runs.withoutFixed), median(runs.withFixed)];
  await broker.stop();
  const loadBefore = loadavg();
  const { fast, slow, weights } = await firstRender();
  const { first, all, raw } = weights;

  const row = (what: string, value: string, budget: string, ok: boolean, note = '') => process.stdout.write(`${what.padEnd(44)} ${value.padStart(12)}   budget ${budget.padEnd(10)} ${ok ? 'ok  ' : 'OVER'}${note}\n`);
  // A render figure: the median of the loads against the budget, their range beside it.
  const renderRow = (what: string, xs: number[]) => (xs.length ? row(what, `${median(xs).toFixed(0)} ms`, '≤ 1000 ms', median(xs) <= 1000, `  (${xs[0]!.toFixed(0)}–${xs.at(-1)!.toFixed(0)})`) : row(what, 'none', '≤ 1000 ms', false));
  const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(' ');
  process.stdout.write(`\nestate-edge console budget (load average ${load(loadBefore)} before the render timing, ${load(loadavg())} after, on ${cpus().length} CPUs: render times rise with load)\n\n`);
  if (!renderOnly) {
    row('RSS added by the console (MALLOC_MMAP_THRESHOLD_=1 MiB)', `${MB(withFixed - withoutFixed)} MB`, '≤ 25 MB', withFixed - withoutFixed <= 25 * 1048576);
    process.stdout.write(`${''.padEnd(4)}(gateway without console ${MB(withoutFixed)} MB, with console ${MB(withFixed)} MB)\n`);
    row('RSS added by the console (glibc defaults)', `${MB(withC - without)} MB`, '≤ 25 MB', withC - without <= 25 * 1048576);
    process.stdout.write(`${''.padEnd(4)}(gateway without console ${MB(without)} MB, with console ${MB(withC)} MB)\n`);
  }
  row('page weight, first render (brotli)', `${(first / 1024).toFixed(1)} KB`, '≤ 300 KB', first <= 300 * 1024);
  row('page weight, every page (brotli)', `${(all / 1024).toFixed(1)} KB`, '≤ 300 KB', all <= 300 * 1024);
  process.stdout.write(`${''.padEnd(4)}(uncompressed ${(raw / 1024).toFixed(1)} KB; Chromium measured ${(fast.transfer / 1024).toFixed(1)} KB transferred for the dashboard incl. headers)\n`);
  process.stdout.write(`first render, median of 7 loads (range), Chromium on loopback; "slowed 4×": CPU slowed 4× (a phone)\n`);
  renderRow('dashboard with data in the page', fast.ms);
  renderRow('dashboard with data in the page, slowed 4×', slow.ms);
  renderRow('that frame laid out and painted', fast.painted);
  renderRow('that frame laid out and painted, slowed 4×', slow.painted);
  renderRow('largest-contentful-paint', fast.lcp);
  renderRow('largest-contentful-paint, slowed 4×', slow.lcp);
  process.stdout.write(`${''.padEnd(4)}(largest contentful element: ${fast.lcpElement}; slowed 4×: ${slow.lcpElement})\n`);
}

if (process.argv[2] === '--child') {
  child(process.argv[3] === 'with', process.argv[4]!).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
} else {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
