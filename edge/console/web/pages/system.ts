import { t } from '../i18n.js';
import { h, api, card, kv, badge, fmtDur, fmtMB, can, toast, errText } from '../lib.js';
import type { LogTail, Ok, SystemInfo } from '../../api-types.js';

// System: version, uptime, network addresses, model files and their hashes, the log
// tail with a level filter, and a service restart (admin).
export async function render(box: HTMLElement): Promise<undefined> {
  const s = await api<SystemInfo>('/api/system');
  const sys = s.system;
  box.append(
    h(
      'div',
      { class: 'grid' },
      card(
        t('system.version'),
        kv([
          [t('system.version'), h('code', {}, s.version)],
          ['Node', h('code', {}, s.node)],
          [t('system.host'), h('code', {}, s.hostname)],
          [t('system.uptime'), fmtDur(s.uptimeS)],
          [t('system.config'), h('code', {}, `${s.configSource} (${s.configRevision})`)],
          [t('system.data'), h('code', {}, s.dataDir)],
          [t('dash.clock'), badge(s.clockSynced, t('dash.synced'), t('dash.unsynced'))],
          [t('dash.mem'), `RSS ${fmtMB(sys.rssMB)} · ${fmtMB(sys.memFreeMB)} / ${fmtMB(sys.memTotalMB)}`],
          [t('dash.disk'), fmtMB(sys.diskFreeMB)],
        ]),
      ),
      card(
        t('system.addresses'),
        h(
          'ul',
          { class: 'plain' },
          s.addresses.map((a) => h('li', {}, h('code', {}, a.address), ' ', h('span', { translate: 'no' }, `${a.iface} ${a.family}`))),
        ),
      ),
    ),
    card(
      t('system.models'),
      s.models.models.length
        ? h(
            'ul',
            { class: 'plain models' },
            s.models.models.map((m) =>
              h('li', {}, m.present ? badge(m.ok, `${t('system.hash')} ✔`, `${t('system.hash')} ✘`) : badge(false, '', t('system.missing')), ' ', h('strong', { translate: 'no' }, m.name), ' ', h('code', {}, `${m.file} · ${m.size ?? '—'} B`), h('div', { class: 'hash', translate: 'no' }, m.sha256 || m.expectedSha256)),
            ),
          )
        : h('p', { class: 'muted' }, s.models.message || t('none')),
    ),
  );
  if (can('technician')) {
    const level = h(
      'select',
      { 'data-testid': 'log-level' },
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((l) => h('option', { value: l, selected: l === 'info' }, t(`level.${l}`))),
    );
    const q = h('input', { type: 'search', placeholder: t('system.filter') });
    const out = h('pre', { class: 'logs', 'data-testid': 'logs' });
    const load = async () => {
      try {
        const r = await api<LogTail>(`/api/logs?level=${level.value}&limit=300${q.value ? `&q=${encodeURIComponent(q.value)}` : ''}`);
        out.replaceChildren(...r.lines.map((l) => h('div', { class: `lvl-${l.level}` }, `${l.time.slice(11, 19)} ${l.level.toUpperCase().padEnd(5)} ${l.mod ? `[${String(l.mod)}] ` : ''}${l.msg}${l.err ? ` — ${typeof l.err === 'object' && 'message' in l.err ? String(l.err.message) : String(l.err)}` : ''}`)));
        out.scrollTop = out.scrollHeight;
      } catch (e) {
        out.textContent = errText(e);
      }
    };
    level.onchange = load;
    q.onchange = load;
    box.append(card(t('system.logs'), h('div', { class: 'row' }, h('label', {}, t('system.level'), level), q, h('button', { onclick: load }, t('refresh'))), out));
    await load();
  }
  if (can('technician')) {
    box.append(card(t('support.title'), h('p', { class: 'muted' }, t('support.help')), h('a', { class: 'button primary', href: '/api/support/bundle', download: '', 'data-testid': 'support-bundle' }, t('support.download'))));
  }
  if (can('admin')) {
    box.append(
      h(
        'div',
        { class: 'row' },
        h(
          'button',
          {
            class: 'danger',
            onclick: async () => {
              if (!confirm(t('system.confirmRestart'))) return;
              try {
                await api<Ok>('/api/system/restart', { method: 'POST' });
                toast(t('system.restarting'));
              } catch (e) {
                toast(errText(e), 'error');
              }
            },
          },
          t('system.restart'),
        ),
      ),
    );
  }
}
