// Small helpers shared by the pages: DOM building (text only, never HTML strings, so
// data from the gateway cannot inject markup), the API client with the CSRF header,
// and formatting.
import { t, getLang } from './i18n.js';
import type { ApiErrorBody, CommandAnswer, CommandResults, DoorCardState, DoorStates, LiveEvent, LiveStatus, Role } from '../api-types.js';

/** What h() accepts as a child: nodes, text, numbers, nested lists; null, undefined and false are skipped. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];
/** h()'s attributes: on* are listeners, class/value/checked set the property, the rest are attributes. */
export type Attrs = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v as EventListener);
    else if (k === 'class') el.className = String(v);
    else if (k === 'value') (el as HTMLInputElement).value = String(v);
    else if (k === 'checked') (el as HTMLInputElement).checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of (children as unknown[]).flat(Infinity) as Child[]) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const session: { csrf: string; user: string; role: Role | '' } = { csrf: '', user: '', role: '' };
const RANK: Record<Role, number> = { viewer: 0, technician: 1, admin: 2 };
export const can = (role: Role): boolean => session.role !== '' && RANK[session.role] >= RANK[role];

export class ApiError extends Error {
  /** The answer's body (a failed config validation carries its problems there). */
  body?: unknown;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: ApiErrorBody['error']['details'],
  ) {
    super(message);
  }
}

let onUnauthorized: (err: ApiError) => void = () => {};
export const setUnauthorizedHandler = (f: (err: ApiError) => void) => (onUnauthorized = f);

// Answers the server inlined into the page for the first render (GET only, used once,
// dropped after the first page so nothing stale is shown later).
const primed = new Map<string, unknown>();
export const prime = (path: string, data: unknown) => data !== undefined && primed.set(path, data);
export const dropPrimed = () => primed.clear();

export interface ApiOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is (a photo, a YAML file), with `type` as its content type. */
  raw?: Blob;
  type?: string;
}

/**
 * A request to the gateway's API. T is the answer's shape, from ../api-types.ts where the
 * server declares it: the answer is not checked at run time (the server is the one the
 * page was served by).
 */
export async function api<T = unknown>(path: string, { method = 'GET', body, raw, type }: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== 'GET') headers['x-csrf-token'] = session.csrf;
  let payload: BodyInit | undefined;
  if (raw !== undefined) {
    payload = raw;
    headers['content-type'] = type || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  if (method === 'GET' && primed.has(path)) {
    const data = primed.get(path);
    primed.delete(path);
    return data as T;
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', t('err.network'));
  }
  const ct = res.headers.get('content-type') || '';
  const data: unknown = ct.includes('json') ? await res.json().catch(() => ({})) : await res.text();
  const failed = data && typeof data === 'object' ? (data as Partial<ApiErrorBody>) : undefined;
  if (!res.ok || (failed?.ok === false && failed.error)) {
    const e: Partial<ApiErrorBody['error']> = failed?.error ?? {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.details);
    err.body = data;
    if (res.status === 401 && !path.startsWith('/api/login') && !path.startsWith('/api/setup')) onUnauthorized(err);
    throw err;
  }
  return data as T;
}

/** Run a command the pages use; its result is typed by name (../api-types.ts CommandResults). */
export async function command<N extends keyof CommandResults>(name: N, args: Record<string, unknown> = {}): Promise<CommandResults[N]> {
  return (await api<CommandAnswer<CommandResults[N]>>(`/api/commands/${encodeURIComponent(name)}`, { method: 'POST', body: args })).result;
}

/**
 * A readable message for an error, by its code (the gateway's error codes are the
 * contract; its English messages are for logs and the API). In Chinese only the
 * translation is shown; in English the server's detail follows it. An unknown code is
 * named as such, in the page's language, with the code for a support call.
 */
export function errText(thrown: unknown): string {
  const err: Partial<ApiError> = thrown instanceof ApiError ? thrown : { code: '', message: thrown instanceof Error ? thrown.message : String(thrown) };
  const key = `err.${err.code}`;
  const min = err.details?.retryAfterS ? Math.ceil(err.details.retryAfterS / 60) : '';
  const known = t(key) !== key;
  const mine = known ? t(key, { min }) : t('err.unknown', { code: err.code || '?' });
  if (getLang() === 'zh') return mine;
  return err.message && err.code !== 'locked' ? `${mine} — ${err.message}` : mine;
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;
export function toast(msg: string, kind: 'info' | 'error' = 'info'): void {
  const el = document.getElementById('toast')!;
  el.textContent = msg;
  el.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = ''), kind === 'error' ? 8000 : 3500);
}

// Local date and time by hand (24-hour, ISO order): a page's first Intl.DateTimeFormat
// loads ICU's locale and zone data, ~50 ms on a desktop and ~250 ms with the CPU slowed
// 4× like a phone's — most of the dashboard's render time. The Date getters are cheap.
const p2 = (n: number) => String(n).padStart(2, '0');
export function fmtClock(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '—' : `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}
export function fmtTime(ms: number | null | undefined): string {
  const d = new Date(ms ?? NaN);
  return !ms || Number.isNaN(d.getTime()) ? '—' : `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${fmtClock(ms)}`;
}
export function fmtDur(seconds: number | null | undefined): string {
  const s = Math.max(0, Math.round(seconds || 0));
  const d = Math.floor(s / 86400),
    hh = Math.floor((s % 86400) / 3600),
    m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
export const fmtMB = (mb: number | null | undefined): string => (mb === null || mb === undefined ? '—' : mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${mb} MB`);

export function badge(ok: unknown, yes: string = t('ok'), no: string = t('fail')): HTMLSpanElement {
  return h('span', { class: `badge ${ok ? 'ok' : 'bad'}` }, ok ? yes : no);
}

export function card(title: Child, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card' }, title ? h('h3', {}, title) : null, ...body);
}

export function kv(rows: ReadonlyArray<readonly [Child, Child, Attrs?]>): HTMLDListElement {
  return h(
    'dl',
    { class: 'kv' },
    rows.map(([k, v, attrs]) => [h('dt', {}, k), h('dd', attrs || {}, v)]),
  );
}

export function table(headers: readonly Child[], rows: HTMLTableSectionElement | readonly Child[]): HTMLDivElement {
  const body = rows instanceof HTMLTableSectionElement && rows.tagName === 'TBODY' ? rows : h('tbody', {}, rows as readonly Child[]);
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((x) => h('th', {}, x)),
        ),
      ),
      body,
    ),
  );
}

/** "Not configured": the server's reason (English, for logs) only in the English UI. */
// For a page's own timers and polls: true while the page is shown. The shell attaches
// the page's box only after render() resolves, so a box never attached yet still counts
// as shown (a loop started inside render must not stop at its first check); once it has
// been attached and then removed, the page was left and the loop ends.
export function shownWhile(box: HTMLElement): () => boolean {
  let attached = false;
  return () => {
    if (box.isConnected) attached = true;
    return box.isConnected || !attached;
  };
}

export function notConfigured(reason: string | undefined): HTMLDivElement {
  return h('div', { class: 'notice', 'data-testid': 'not-configured' }, h('strong', {}, t('notconf')), reason && getLang() !== 'zh' ? h('p', { class: 'muted' }, reason) : null);
}

/** A generic runner for a capability's commands: name, JSON arguments, result. */
export function commandRunner(commands: readonly string[]): HTMLElement | null {
  if (!commands.length) return null;
  const sel = h(
    'select',
    {},
    commands.map((c) => h('option', { value: c }, c)),
  );
  const args = h('textarea', { rows: 3, spellcheck: 'false', placeholder: '{}' });
  const out = h('pre', { class: 'result' });
  const run = async () => {
    let parsed: unknown = {};
    try {
      parsed = args.value.trim() ? JSON.parse(args.value) : {};
    } catch (e) {
      out.textContent = String((e as Error).message);
      return;
    }
    out.textContent = t('loading');
    try {
      const r = await api<CommandAnswer>(`/api/commands/${encodeURIComponent(sel.value)}`, { method: 'POST', body: parsed });
      out.textContent = JSON.stringify(r.result, null, 2);
    } catch (e) {
      out.textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
    }
  };
  return card(t('cmd.commands'), h('div', { class: 'row' }, sel, h('button', { onclick: run }, t('cmd.run'))), h('label', {}, t('cmd.args'), args), out);
}

/** One door's card: lock, contact, alarm and fire state, each in words (the Dashboard and the Doors page both draw it, so it lives here in the shell). */
export function doorCard(d: DoorCardState, fire: DoorStates['fire'] | undefined): HTMLDivElement {
  const alert = d.alarms.length > 0 || !!d.fault || d.fireReleased;
  const line = (label: string, value: Child, bad: boolean) => h('li', {}, h('span', { class: 'muted' }, `${label}${t('sep')}`), bad ? h('strong', { class: 'error' }, value) : value);
  return h(
    'div',
    { class: `doorcard${alert ? ' alert' : ''}`, 'data-testid': `doorcard-${d.id}` },
    h('strong', { translate: 'no' }, d.name || d.id),
    h(
      'ul',
      {},
      line(t('door.lockLabel'), t(`door.${d.lock}`), false),
      line(t('door.contactLabel'), t(`door.${d.contact}`), d.contact === 'open' && d.lock === 'locked'),
      line(t('door.alarmLabel'), d.alarms.length ? d.alarms.map((a) => t(`door.alarm.${a}`)).join('、') : t('none'), d.alarms.length > 0),
      line(t('door.fireLabel'), d.fireReleased ? t('door.fire') : fire?.inputActive ? t('door.fireInput') : t('door.fireNormal'), d.fireReleased),
      d.mode ? line(t('door.modeLabel'), t(`mode.${d.mode}`), false) : null,
      d.reader?.problem ? line(t('door.readerLabel'), d.reader.problem, true) : null,
      d.awaitingPin ? line(t('door.awaitingPin'), fmtTime(d.awaitingPin.until), false) : null,
      d.fault ? line(t('fail'), d.fault, true) : null,
    ),
  );
}

export function doorCards(states: DoorStates): HTMLDivElement {
  return h(
    'div',
    { class: 'doorcards', 'data-testid': 'door-cards' },
    states.doors.map((d) => doorCard(d, states.fire)),
  );
}

/** What a page's render() gets besides its box: a way to draw the page again (after a change). */
export interface PageContext {
  rerender: () => void;
}
/** A page's handler for the live stream: the status pushed every few seconds, or one bus event. */
export type LiveHandler = (...event: ['status', LiveStatus] | ['bus', LiveEvent]) => void;
/**
 * A page module (pages/*.ts), as the shell's page registry (app.ts PAGES) loads it: it
 * draws into box and may return a live handler. Pages import the shell (this file,
 * i18n.ts); the shell reaches a page only through the registry.
 */
export interface PageModule {
  render(box: HTMLElement, ctx: PageContext): Promise<LiveHandler | undefined>;
}
