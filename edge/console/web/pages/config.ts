import { t, getLang } from '../i18n.js';
import { SCHEMA_ZH } from '../schema-zh.js';
import { h, api, card, table, toast, errText, fmtTime, can, shownWhile, ApiError } from '../lib.js';
import type { LiveHandler } from '../lib.js';
import type { ConfigApplyMarker, ConfigApplied, ConfigCheck, ConfigView } from '../../api-types.js';

/** The parts of the config's JSON Schema (GET /api/config/schema) the form is drawn from. */
interface SchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  /** Set by the form itself: the key is not required in its section. */
  optional?: boolean;
}
/** A key's place in the config: section and key names, array indexes. */
type ConfigPath = Array<string | number>;

// Configuration: a form drawn from the config schema (each key's description is its
// help text), a YAML view of the file, validation with problems shown at the field,
// the diff against the running config, apply (revision-checked; the gateway restarts and
// rolls back by itself if it does not come up healthy), download and upload.
const isSecretRef = (s: SchemaNode | undefined) => !!s && s.type === 'object' && s.properties && 'env' in s.properties && 'file' in s.properties && 'value' in s.properties;

// A key's name and help in the page's language: in Chinese from SCHEMA_ZH (by the path
// with array indexes as []), the key itself beside it; in English the schema's description.
const schemaPath = (path: ConfigPath) =>
  path
    .map((p) => (typeof p === 'number' ? '[]' : `.${p}`))
    .join('')
    .replace(/^\./, '')
    .replace(/\.\[\]/g, '[]');
function describe(path: ConfigPath, s: SchemaNode) {
  const zh = getLang() === 'zh' ? SCHEMA_ZH[schemaPath(path)] : undefined;
  return { label: zh ? zh[0] : undefined, help: zh ? zh[1] : s.description };
}

// The validator's messages (Ajv's and the loader's), said in Chinese; a message this table
// does not know is shown as it is, after a Chinese lead.
const PROBLEMS_ZH: ReadonlyArray<readonly [RegExp, string]> = [
  [/^must be >= (.+)$/, '必须 ≥ $1'],
  [/^must be <= (.+)$/, '必须 ≤ $1'],
  [/^must be > (.+)$/, '必须 > $1'],
  [/^must be < (.+)$/, '必须 < $1'],
  [/^must be integer$/, '必须是整数'],
  [/^must be number$/, '必须是数字'],
  [/^must be string$/, '必须是文本'],
  [/^must be boolean$/, '必须是“是”或“否”'],
  [/^must be array$/, '必须是列表'],
  [/^must be object$/, '必须是对象'],
  [/^must be equal to one of the allowed values(.*)$/, '必须是允许的值之一$1'],
  [/^must be equal to constant(.*)$/, '必须等于固定值$1'],
  [/^must NOT have additional properties(.*)$/, '有不认识的键$1'],
  [/^unknown key(.*)$/, '不认识的键$1'],
  [/^must have required property '(.+)'$/, '缺少必填项“$1”'],
  [/^must NOT have fewer than (\d+) characters$/, '至少 $1 个字符'],
  [/^must NOT have more than (\d+) characters$/, '最多 $1 个字符'],
  [/^must NOT have fewer than (\d+) items$/, '至少 $1 项'],
  [/^must NOT have more than (\d+) items$/, '最多 $1 项'],
  [/^must match pattern (.+)$/, '格式不符：$1'],
  [/^must match exactly one schema in oneOf$/, '不符合任何一种允许的写法'],
  [/^must match a schema in anyOf$/, '不符合任何一种允许的写法'],
];
function problemText(msg: string) {
  if (getLang() !== 'zh') return msg;
  for (const [re, zh] of PROBLEMS_ZH) if (re.test(msg)) return msg.replace(re, zh);
  return `${t('config.problem')}${t('sep')}${msg}`;
}

export async function render(box: HTMLElement): Promise<LiveHandler | undefined> {
  const [cfg, schema] = await Promise.all([api<ConfigView>('/api/config'), api<SchemaNode>('/api/config/schema')]);
  const changes = new Map<string, { path: ConfigPath; value: unknown }>();
  const fieldErrors = new Map<string, HTMLElement>();
  const general = h('ul', { class: 'problems', 'data-testid': 'problems' });
  const diffBox = h('div', { 'data-testid': 'diff' });
  const status = h('p', { 'data-testid': 'config-status' });
  let mode: 'form' | 'yaml' = 'form';

  const field = (path: ConfigPath, s: SchemaNode, value: unknown) => {
    const key = path.join('.');
    const err = h('small', { class: 'field-error', 'data-field-error': key });
    fieldErrors.set(key, err);
    const d = describe(path, s);
    const label = [d.label ? h('span', {}, d.label) : null, h('code', { class: 'pkey' }, path[path.length - 1])];
    const help = d.help ? h('small', { class: 'muted' }, d.help) : null;
    let input: HTMLInputElement | HTMLSelectElement | HTMLElement;
    const set = (v: unknown) => changes.set(key, { path, value: v });
    if (s.enum) {
      // Enum values are config tokens (written as such in the YAML), shown as they are.
      const values = s.enum;
      const sel = h(
        'select',
        { name: key, translate: 'no' },
        s.optional ? h('option', { value: '' }, '—') : null,
        values.map((v) => h('option', { value: String(v), selected: v === value }, String(v))),
      );
      sel.onchange = () => set(sel.value === '' ? null : typeof values[0] === 'number' ? Number(sel.value) : sel.value);
      input = sel;
    } else if (s.type === 'boolean') {
      const check = h('input', { type: 'checkbox', name: key, checked: !!value });
      check.onchange = () => set(check.checked);
      input = check;
    } else if (s.type === 'integer' || s.type === 'number') {
      const num = h('input', { type: 'number', name: key, value: value ?? '', step: s.type === 'integer' ? '1' : 'any', inputmode: 'numeric' });
      // Sent as typed; the server's validation (not the browser's) is the one that counts.
      num.onchange = () => set(num.value === '' ? null : Number(num.value));
      input = num;
    } else if (s.type === 'string') {
      const text = h('input', { type: 'text', name: key, value: value ?? '', placeholder: s.default !== undefined ? `${t('config.default')}: ${String(s.default)}` : '' });
      text.onchange = () => set(text.value === '' ? null : text.value);
      input = text;
    } else {
      input = h('code', { class: 'muted' }, value === undefined ? '—' : isSecretRef(s) ? '***' : JSON.stringify(value).slice(0, 80), ` (${t('config.yamlOnly')})`);
    }
    if (!cfg.editable && (input instanceof HTMLInputElement || input instanceof HTMLSelectElement)) input.disabled = true;
    return h('div', { class: 'field', 'data-path': key }, h('label', {}, h('span', { class: 'fname' }, label), input), help, err);
  };
  const section = (path: ConfigPath, s: SchemaNode, value: unknown): HTMLElement => {
    const props = s.properties || {};
    const req = new Set(s.required || []);
    const kids = Object.entries(props).map(([k, ps]): HTMLElement => {
      const sub = { ...ps, optional: !req.has(k) };
      const v = value && typeof value === 'object' ? (value as Record<string, unknown>)[k] : undefined;
      if (ps.type === 'object' && ps.properties && !isSecretRef(ps)) return section([...path, k], sub, v);
      return field([...path, k], sub, v);
    });
    const title = path.join('.');
    const d = describe(path, s);
    const name = [d.label ? h('strong', {}, d.label) : null, ' ', h('code', {}, title)];
    return path.length === 1 ? h('details', { class: 'section', 'data-section': title }, h('summary', {}, name, d.help ? h('small', { class: 'muted' }, ` ${d.help}`) : ''), kids) : h('fieldset', {}, h('legend', {}, name), kids);
  };
  const formView = h(
    'div',
    { class: 'cfgform' },
    Object.entries(schema.properties ?? {}).map(([k, s]) => section([k], s, cfg.running[k])),
  );
  const yaml = h('textarea', { class: 'yaml', rows: 24, spellcheck: 'false', 'data-testid': 'yaml', value: cfg.yaml });
  if (!cfg.editable) yaml.readOnly = true;
  const yamlView = h('div', { hidden: true }, yaml);

  const request = () => (mode === 'form' ? { changes: [...changes.values()] } : { yaml: yaml.value });
  const showResult = (r: ConfigCheck) => {
    for (const el of fieldErrors.values()) el.textContent = '';
    general.replaceChildren();
    for (const p of r.problems || []) {
      const m = p.match(/^([\w.[\]-]+): (.*)$/);
      const el = m && fieldErrors.get(m[1]!);
      if (m && el && mode === 'form') {
        el.textContent = problemText(m[2]!);
        el.closest('details')?.setAttribute('open', '');
      } else general.append(h('li', {}, m ? [h('code', {}, m[1]), `${t('sep')}${problemText(m[2]!)}`] : problemText(p)));
    }
    diffBox.replaceChildren(
      ...(r.diff?.length
        ? [
            h('h4', {}, t('config.diff')),
            table(
              ['', '−', '+'],
              r.diff.map((d) => h('tr', {}, h('td', {}, h('code', {}, d.path)), h('td', { class: 'del' }, d.from === undefined ? '' : JSON.stringify(d.from)), h('td', { class: 'add' }, d.to === undefined ? '' : JSON.stringify(d.to)))),
            ),
          ]
        : r.ok
          ? [h('p', { class: 'muted' }, t('config.nochanges'))]
          : []),
    );
  };
  const validate = async () => {
    if (mode === 'form' && changes.size === 0) return showResult({ ok: true, problems: [], diff: [] });
    try {
      const r = await api<ConfigCheck>('/api/config/validate', { method: 'POST', body: request() });
      showResult(r);
      status.textContent = r.ok ? t('config.valid') : t('err.invalid_config');
      status.className = r.ok ? 'ok' : 'error';
      return r;
    } catch (e) {
      status.textContent = errText(e);
      status.className = 'error';
    }
  };
  const waitBack = async (oldRevision: string) => {
    for (let i = 0; i < 120; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        const c = await api<ConfigView>('/api/config');
        if (c.runningRevision !== oldRevision || (c.lastApply && c.lastApply.status === 'rolled_back')) {
          toast(t('config.back'));
          location.reload();
          return;
        }
      } catch {
        /* still restarting */
      }
    }
  };
  const apply = async () => {
    const v = await validate();
    if (!v?.ok) return;
    if (!v.diff?.length) return toast(t('config.nochanges'));
    if (!confirm(t('config.confirmApply'))) return;
    try {
      await api<ConfigApplied>('/api/config/apply', { method: 'POST', body: { ...request(), baseRevision: cfg.revision } });
      status.textContent = t('config.applied');
      status.className = 'ok';
      box.querySelectorAll('button').forEach((b) => (b.disabled = true));
      waitBack(cfg.runningRevision);
    } catch (e) {
      if (e instanceof ApiError && (e.body as { problems?: unknown } | undefined)?.problems) showResult(e.body as ConfigCheck);
      status.textContent = errText(e);
      status.className = 'error';
    }
  };
  const upload = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    try {
      const r = await api<ConfigCheck>('/api/config/upload', { method: 'POST', raw: file, type: 'text/yaml' });
      switchTo('yaml');
      yaml.value = r.yaml ?? '';
      showResult(r);
      status.textContent = r.ok ? t('config.valid') : t('err.invalid_config');
      status.className = r.ok ? 'ok' : 'error';
    } catch (e) {
      status.textContent = errText(e);
      status.className = 'error';
    }
  };
  const tabForm = h('button', { class: 'tab active', onclick: () => switchTo('form') }, t('config.form'));
  const tabYaml = h('button', { class: 'tab', onclick: () => switchTo('yaml'), 'data-testid': 'tab-yaml' }, t('config.yaml'));
  const switchTo = (m: 'form' | 'yaml') => {
    mode = m;
    formView.hidden = m !== 'form';
    yamlView.hidden = m !== 'yaml';
    tabForm.classList.toggle('active', m === 'form');
    tabYaml.classList.toggle('active', m === 'yaml');
  };

  const last = cfg.lastApply;
  const lastBox = h('div', { 'data-testid': 'last-apply' });
  const showLast = (m: ConfigApplyMarker | null) => {
    if (!m) return lastBox.replaceChildren();
    const what = m.status === 'rolled_back' ? `${t('config.rolledBack')}${t('sep')}${m.reasonCode ? t(`rollback.${m.reasonCode}`, m.reasonArgs || {}) : t('rollback.other')}` : m.status === 'confirmed' ? t('config.confirmed', { at: fmtTime(m.decidedAt) }) : t('config.pending');
    lastBox.className = `notice ${m.status === 'rolled_back' ? 'bad' : m.status === 'confirmed' ? 'good' : ''}`;
    lastBox.dataset.status = m.status;
    lastBox.replaceChildren(h('strong', {}, `${t('config.lastApply')}${t('sep')}`), h('span', { translate: 'no' }, m.user), ` · ${fmtTime(m.at)} · ${what}`);
  };
  showLast(last);
  // While a change waits for its confirmation, the page follows it: the live event, and a
  // slow poll in case the stream reconnects after the restart.
  let watching = last && last.status === 'pending';
  const refreshLast = async () => {
    try {
      const c = await api<ConfigView>('/api/config');
      showLast(c.lastApply);
      watching = c.lastApply && c.lastApply.status === 'pending';
    } catch {
      /* restarting */
    }
  };
  const shown = shownWhile(box);
  const poll = async () => {
    while (watching && shown()) {
      await new Promise((r) => setTimeout(r, 2000));
      if (watching && shown()) await refreshLast();
    }
  };
  if (watching) poll();

  box.append(
    ...[
      !cfg.editable ? h('div', { class: 'notice' }, h('strong', {}, t('config.notEditable')), h('p', {}, cfg.reason)) : null,
      lastBox,
      h('p', { class: 'muted' }, h('code', {}, cfg.path || cfg.source), ` · ${t('config.revision')} `, h('code', {}, cfg.runningRevision)),
      h(
        'div',
        { class: 'row' },
        tabForm,
        tabYaml,
        h('span', { class: 'grow' }),
        h('a', { class: 'button link', href: '/api/config/download', download: '' }, t('config.download')),
        can('technician') ? h('label', { class: 'button link' }, t('config.upload'), h('input', { type: 'file', accept: '.yaml,.yml,text/yaml', hidden: true, 'data-testid': 'upload', onchange: (e: Event) => upload(e.target as HTMLInputElement) })) : null,
      ),
      card('', formView, yamlView),
      h('div', { class: 'row sticky' }, h('button', { onclick: validate, 'data-testid': 'validate' }, t('config.validate')), cfg.editable ? h('button', { class: 'primary', onclick: apply, 'data-testid': 'apply' }, t('config.apply')) : null, status),
      general,
      diffBox,
    ].filter((x): x is HTMLElement => x !== null),
  );
  const live: LiveHandler = (kind, ev) => {
    if (kind === 'bus' && ev.type === 'console.config' && ev.data && (ev.data as { status?: string }).status !== 'applying') refreshLast();
  };
  return live;
}
