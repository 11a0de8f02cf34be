// The console shell: first-run setup, login, navigation, the live event stream, and the
// pages (each a module exporting `render(main, ctx)` that may return a live handler).
import { t, setLang, getLang } from './i18n.js';
import { h, api, session, can, errText, toast, setUnauthorizedHandler, prime, dropPrimed, ApiError, type LiveHandler, type PageModule } from './lib.js';
import type { BootData, Capabilities, Dashboard, LiveEvent, LiveStatus, LoginRequest, Ok, Role, SessionInfo, SessionStarted } from '../api-types.js';
// The first page is part of the app (no import round trip before the first render).
import * as dashboardPage from './pages/dashboard.js';

// The page registry: the one place the shell names its pages (the pages import the shell,
// never the reverse: test/architecture/console-web.test.ts). An `optional` page is a
// capability most gateways do not have (the e-bike ones): its tab shows only once
// GET /api/capabilities says it is configured here.
const PAGES: ReadonlyArray<{ id: string; role: Role; optional?: true; load: () => PageModule | Promise<PageModule> }> = [
  { id: 'dashboard', role: 'viewer', load: () => dashboardPage },
  { id: 'meters', role: 'viewer', load: () => import('./pages/meters.js') },
  { id: 'doors', role: 'viewer', load: () => import('./pages/doors.js') },
  { id: 'people', role: 'technician', load: () => import('./pages/people.js') },
  { id: 'camera', role: 'technician', load: () => import('./pages/camera.js') },
  { id: 'elevator', role: 'viewer', optional: true, load: () => import('./pages/elevator.js') },
  { id: 'charging', role: 'viewer', optional: true, load: () => import('./pages/charging.js') },
  { id: 'config', role: 'technician', load: () => import('./pages/config.js') },
  { id: 'system', role: 'viewer', load: () => import('./pages/system.js') },
  { id: 'users', role: 'admin', load: () => import('./pages/users.js') },
  { id: 'account', role: 'viewer', load: () => import('./pages/account.js') },
];

const main = document.getElementById('main')!;
let liveHandlers: LiveHandler[] = [];
let source: EventSource | undefined;
let current = '';
let info: Partial<SessionInfo> = {};
/** The capabilities' pages (for the optional tabs), read after the first render. */
let configured: Capabilities = {};

function setHeader() {
  document.getElementById('site')!.textContent = info.site ? `${info.site} · ${info.gateway}` : 'estate-edge';
  document.title = `${t('app.title')} · ${info.gateway ?? ''}`;
  const lb = document.getElementById('lang-btn')!;
  lb.textContent = t('lang.switch');
  document.getElementById('who')!.textContent = session.user ? `${session.user} (${t(`role.${session.role}`)})` : '';
  const out = document.getElementById('logout-btn')!;
  out.textContent = t('logout');
  out.hidden = !session.user;
  const nav = document.getElementById('nav')!;
  nav.hidden = !session.user;
  nav.replaceChildren(...PAGES.filter((p) => can(p.role) && (!p.optional || configured[p.id]?.configured || p.id === current)).map((p) => h('a', { href: `#/${p.id}`, class: p.id === current ? 'active' : '', 'data-page': p.id }, t(`nav.${p.id}`))));
}

type Field = [name: string, label: string, type: string, extra?: Record<string, unknown>];
function form(fields: Field[], submitLabel: string, onsubmit: (data: LoginRequest) => Promise<void>): HTMLFormElement {
  const err = h('p', { class: 'error', role: 'alert' });
  const f = h(
    'form',
    { class: 'auth' },
    fields.map(([name, label, type, extra]) => h('label', {}, label, h('input', { name, type, required: true, ...(extra || {}) }))),
    err,
    h('button', { type: 'submit' }, submitLabel),
  );
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    // `as unknown as`: FormData's entries are typed File | string; these fields are all text
    // inputs named as the request's keys (user, password, token).
    const data = Object.fromEntries(new FormData(f)) as unknown as LoginRequest;
    const button = f.querySelector('button')!;
    button.disabled = true;
    try {
      await onsubmit(data);
    } catch (ex) {
      err.textContent = errText(ex);
    } finally {
      button.disabled = false;
    }
  });
  return f;
}

async function loggedIn(r: SessionStarted | SessionInfo): Promise<void> {
  Object.assign(session, { user: r.user, role: r.role, csrf: r.csrf });
  if (location.hash === '#/login' || location.hash === '#/setup') location.hash = '#/dashboard';
  else await route();
  // Once the page is on screen (the task after its frame): the address and the live stream.
  // Both cost the main thread (browser round trips) and the first frame needs neither.
  requestAnimationFrame(() =>
    setTimeout(() => {
      if (!session.user) return;
      if (!location.hash) history.replaceState(null, '', '#/dashboard');
      connectLive();
      // The optional tabs: from the inlined boot data when the server sent it (no request),
      // else asked for now that the page is drawn.
      if (Object.keys(configured).length) setHeader();
      else
        api<Capabilities>('/api/capabilities').then(
          (c) => {
            configured = c;
            setHeader();
          },
          () => {},
        );
    }),
  );
}

function showSetup() {
  current = 'setup';
  setHeader();
  main.replaceChildren(
    h(
      'section',
      { class: 'card narrow' },
      h('h2', {}, t('setup.title')),
      h('p', { class: 'muted' }, t('setup.intro')),
      // A QR code from the installer's label opens #/setup?token=…: the token is filled in.
      form(
        [
          ['token', t('setup.token'), 'text', { autocomplete: 'off', value: decodeURIComponent((location.hash.match(/[?&]token=([^&]+)/) || [])[1] || ''), translate: 'no' }],
          ['user', t('login.user'), 'text', { autocomplete: 'username' }],
          ['password', t('password.new'), 'password', { autocomplete: 'new-password', minlength: 10 }],
        ],
        t('setup.submit'),
        async (d) => loggedIn(await api<SessionStarted>('/api/setup', { method: 'POST', body: d })),
      ),
    ),
  );
}

function showLogin() {
  current = 'login';
  closeLive();
  setHeader();
  main.replaceChildren(
    h(
      'section',
      { class: 'card narrow' },
      h('h2', {}, t('login.title')),
      form(
        [
          ['user', t('login.user'), 'text', { autocomplete: 'username' }],
          ['password', t('login.password'), 'password', { autocomplete: 'current-password' }],
        ],
        t('login.submit'),
        async (d) => loggedIn(await api<SessionStarted>('/api/login', { method: 'POST', body: d })),
      ),
    ),
  );
}

function closeLive() {
  source?.close();
  source = undefined;
  setDot(false);
}

function setDot(on: boolean): void {
  const dot = document.getElementById('live-dot')!;
  dot.className = `dot ${on ? 'on' : 'off'}`;
  dot.title = on ? t('live.on') : t('live.off');
  dot.dataset.live = on ? '1' : '0';
}

function connectLive() {
  closeLive();
  source = new EventSource('/api/live');
  source.onopen = () => setDot(true);
  source.onerror = () => setDot(false);
  const parse = (e: MessageEvent<string>): unknown => {
    try {
      return JSON.parse(e.data);
    } catch {
      return undefined;
    }
  };
  // The server sends these two shapes (live.ts: `status` is liveStatus(), `bus` a LiveEvent).
  source.addEventListener('status', (e) => {
    const data = parse(e) as LiveStatus | undefined;
    if (data) for (const f of liveHandlers) f('status', data);
  });
  source.addEventListener('bus', (e) => {
    const data = parse(e) as LiveEvent | undefined;
    if (data) for (const f of liveHandlers) f('bus', data);
  });
  // The server ended the stream (logout, role change, session expired, or the gateway's
  // stream limit): no reconnecting; if the session is gone, the 401 shows the login.
  source.addEventListener('end', () => {
    closeLive();
    setDot(false);
    api<SessionInfo>('/api/session').then(
      (s) => {
        if (!s.user) api<Dashboard>('/api/dashboard').catch(() => {});
      },
      () => {},
    );
  });
}

async function route() {
  const id = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'dashboard';
  if (!session.user) return boot();
  const page = PAGES.find((p) => p.id === id && can(p.role)) || PAGES[0]!;
  current = page.id;
  setHeader();
  liveHandlers = [];
  main.replaceChildren(h('p', { class: 'muted' }, t('loading')));
  try {
    performance.mark('ee:route');
    const mod = await page.load();
    const box = h('div', { class: 'page', 'data-page': page.id });
    performance.mark('ee:module');
    const handler = await mod.render(box, { rerender: route });
    performance.mark('ee:drawn');
    if (current !== page.id) return;
    main.replaceChildren(h('h2', {}, t(`nav.${page.id}`)), box);
    if (typeof handler === 'function') liveHandlers.push(handler);
    document.body.dataset.rendered = page.id;
    // First render time (navigation start → page drawn with data), read by bench:console,
    // and when that frame has been laid out and painted (the task after its animation frame).
    if (!document.body.dataset.firstRenderMs) {
      document.body.dataset.firstRenderMs = String(Math.round(performance.now()));
      requestAnimationFrame(() => setTimeout(() => (document.body.dataset.firstPaintMs = String(Math.round(performance.now())))));
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    main.replaceChildren(h('p', { class: 'error' }, errText(e)));
  } finally {
    dropPrimed();
  }
}

// The data of the first render, inlined by the server when the browser sent a live
// session cookie (GET /api/session, /api/dashboard and /api/capabilities as they would
// answer): the dashboard is drawn without waiting for the network. Used once.
function takeInlined(): Partial<BootData> | undefined {
  const el = document.getElementById('ee-boot');
  if (!el) return undefined;
  el.remove();
  try {
    return JSON.parse(el.textContent ?? '') as Partial<BootData>;
  } catch {
    return undefined;
  }
}
let inlined = takeInlined();

async function boot() {
  const first = inlined;
  inlined = undefined;
  try {
    let s: SessionInfo;
    if (first?.session?.user) {
      s = first.session;
      prime('/api/dashboard', first.dashboard);
      prime('/api/capabilities', first.capabilities);
      if (first.capabilities) configured = first.capabilities;
    } else s = await api<SessionInfo>('/api/session');
    performance.mark('ee:session');
    info = s;
    if (s.user) return loggedIn(s);
    if (s.setupNeeded) return showSetup();
    return showLogin();
  } catch (e) {
    main.replaceChildren(h('p', { class: 'error' }, errText(e)), h('button', { onclick: boot }, t('refresh')));
  }
}

setUnauthorizedHandler(() => {
  Object.assign(session, { user: '', role: '', csrf: '' });
  toast(t('err.not_logged_in'), 'error');
  showLogin();
});

document.getElementById('lang-btn')!.addEventListener('click', () => {
  setLang(getLang() === 'zh' ? 'en' : 'zh');
  if (session.user) route();
  else if (current === 'setup') showSetup();
  else showLogin();
});
document.getElementById('logout-btn')!.addEventListener('click', async () => {
  try {
    await api<Ok>('/api/logout', { method: 'POST' });
  } catch {
    /* logged out either way */
  }
  Object.assign(session, { user: '', role: '', csrf: '' });
  location.hash = '';
  showLogin();
});
window.addEventListener('hashchange', () => session.user && route());
boot();
