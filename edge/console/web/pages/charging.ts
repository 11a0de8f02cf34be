import { t } from '../i18n.js';
import { h, api, command, card, table, badge, notConfigured, can, toast, errText, fmtTime, shownWhile } from '../lib.js';
import type { Capabilities, ChargingAlarmEvent, ChargingPileRow, ChargingPortRow, ChargingStatusResult } from '../../api-types.js';
import type { LiveHandler } from '../lib.js';

// Charging piles: every pile's ports (state, power, the open session's energy and peak,
// relay, why the last session ended, fault), a fire banner while a pile's smoke/heat
// input is tripped, and for technicians cut/enable per port (charging.stop / .enable,
// audited by the gateway). A charging.port event redraws its row at once; sessions and
// alarms read the status again; power readings have no event, so the status is also
// read every POLL_S seconds while the page is shown.
const POLL_S = 3;

const watts = (w: number | null | undefined) => (w === null || w === undefined ? '—' : `${Math.round(w)} W`);

export async function render(box: HTMLElement): Promise<LiveHandler | undefined> {
  const caps = await api<Capabilities>('/api/capabilities');
  if (!caps.charging?.configured) {
    box.append(notConfigured(caps.charging?.reason));
    return;
  }
  const tech = can('technician');
  const shown = shownWhile(box);
  const banner = h('div', { 'data-testid': 'fire-banner' });
  const pilesBox = h('div', { 'data-testid': 'charging-piles' });
  const counters = h('p', { class: 'small muted', 'data-testid': 'charging-counters' });
  const rows = new Map<string, HTMLTableRowElement>();
  const rowKey = (pile: string, port: string) => `${pile}/${port}`;

  const act = async (p: ChargingPortRow, what: 'stop' | 'enable') => {
    if (!confirm(t(what === 'stop' ? 'chg.confirmStop' : 'chg.confirmEnable', { port: `${p.pile}/${p.port}` }))) return;
    try {
      const r = await command(what === 'stop' ? 'charging.stop' : 'charging.enable', { pile: p.pile, port: p.port });
      updateRow(r);
      toast(t('chg.done', { port: `${p.pile}/${p.port}` }));
    } catch (e) {
      toast(errText(e), 'error');
    }
    await load().catch(() => {});
  };

  const portRow = (p: ChargingPortRow) => {
    const id = `${p.pile}-${p.port}`;
    const bad = p.state === 'fault';
    return h(
      'tr',
      { class: bad ? 'denied' : '', 'data-testid': `port-${id}`, 'data-state': p.state },
      h('td', { translate: 'no' }, p.port),
      h('td', { 'data-testid': `port-state-${id}` }, bad ? h('strong', { class: 'error' }, t('chg.st.fault')) : t(`chg.st.${p.state}`)),
      h('td', { 'data-testid': `port-power-${id}` }, watts(p.powerW)),
      h('td', {}, p.session ? `${p.session.kWh.toFixed(3)} kWh` : '—'),
      h('td', {}, p.session ? watts(p.session.peakW) : '—'),
      h('td', { 'data-testid': `port-relay-${id}` }, p.relay.on === null ? t('chg.unknown') : badge(p.relay.on, t('chg.on'), t('chg.off'))),
      h('td', { class: 'small' }, p.fault ? h('span', { class: 'error' }, p.fault) : p.lastEnd ? `${t(`chg.end.${p.lastEnd.reason}`)} · ${fmtTime(p.lastEnd.at)}` : '—'),
      tech
        ? h(
            'td',
            {},
            h('button', { class: 'danger', 'data-testid': `stop-${id}`, disabled: p.state === 'off' && p.relay.on === false, onclick: () => act(p, 'stop') }, t('chg.stop')),
            ' ',
            h('button', { 'data-testid': `enable-${id}`, disabled: p.state === 'charging' || p.state === 'idle', onclick: () => act(p, 'enable') }, t('chg.enable')),
          )
        : null,
    );
  };
  const updateRow = (p: ChargingPortRow) => {
    const key = rowKey(p.pile, p.port);
    const old = rows.get(key);
    if (!old) return;
    const row = portRow(p);
    old.replaceWith(row);
    rows.set(key, row);
  };

  const pileCard = (pile: ChargingPileRow) => {
    const body = h('tbody', {});
    for (const p of pile.ports) {
      const row = portRow(p);
      rows.set(rowKey(p.pile, p.port), row);
      body.append(row);
    }
    const heads = [t('chg.port'), t('chg.state'), t('chg.power'), t('chg.kwh'), t('chg.peak'), t('chg.relay'), t('chg.lastEnd'), tech ? t('chg.actions') : null].filter((x): x is string => x !== null);
    return h('div', { 'data-testid': `pile-${pile.id}` }, h('h4', { translate: 'no' }, pile.name || pile.id, ' ', pile.fire.active ? badge(false, '', t('chg.end.fire')) : badge(true, t('chg.fireOk'))), table(heads, body));
  };

  const names = new Map<string, string>();
  const fireBanner = (pile: string, since: number | undefined) => h('div', { class: 'notice bad', role: 'alert', 'data-pile': pile }, h('strong', {}, t('chg.fire', { pile: names.get(pile) || pile })), since ? h('p', {}, fmtTime(since)) : null);
  const draw = (s: ChargingStatusResult) => {
    rows.clear();
    for (const p of s.piles) names.set(p.id, p.name || p.id);
    banner.replaceChildren(...s.piles.filter((p) => p.fire.active).map((p) => fireBanner(p.id, p.fire.since)));
    pilesBox.replaceChildren(...s.piles.map(pileCard));
    counters.textContent = `${t('chg.sessions')}${t('sep')}${s.counters.sessions}`;
  };
  const load = async () => draw(await command('charging.status'));
  await load();
  box.append(banner, card(t('chg.piles'), pilesBox, counters));

  const poll = async () => {
    if (!shown()) return;
    if (document.visibilityState === 'visible') await load().catch(() => {});
    if (shown()) setTimeout(poll, POLL_S * 1000);
  };
  setTimeout(poll, POLL_S * 1000);

  let pending: ReturnType<typeof setTimeout> | undefined;
  return (kind, ev) => {
    if (kind !== 'bus' || !ev.type.startsWith('charging.')) return;
    if (ev.type === 'charging.port') updateRow(ev.data as ChargingPortRow);
    if (ev.type === 'charging.alarm') {
      const a = ev.data as ChargingAlarmEvent;
      // The fire banner at once, from the event (never waiting for a status read).
      if (a.alarm === 'fire') {
        const shownFor = [...banner.children].find((el) => (el as HTMLElement).dataset.pile === a.pile);
        if (a.active && !shownFor) banner.append(fireBanner(a.pile, a.at));
        if (!a.active) shownFor?.remove();
      }
      if (a.active && a.alarm !== 'fire') toast(t(`chg.alarm.${a.alarm}`, { pile: a.pile, port: a.port ?? '' }), 'error');
    }
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(() => {}), 150);
  };
}
