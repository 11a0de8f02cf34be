import { t } from '../i18n.js';
import { h, api, card, table, notConfigured, toast, errText, fmtTime } from '../lib.js';

// People: search, add, edit validity and door groups, enrol a face from a photo, delete.
const cmd = (name, body = {}) => api(`/api/commands/${name}`, { method: 'POST', body }).then((r) => r.result);
const toLocal = (ms) => (ms ? new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : '');
const fromLocal = (s) => (s ? new Date(s).getTime() : undefined);
const PERSON_KEYS = ['id', 'name', 'kind', 'validFrom', 'validUntil', 'doorGroups', 'schedule', 'enabled', 'note'];

function editor(person, onDone) {
  const isNew = !person;
  const p = person || { id: '', kind: 'resident', doorGroups: [] };
  const f = h('form', { class: 'stack', 'data-testid': 'person-form' },
    h('label', {}, t('people.id'), h('input', { name: 'id', value: p.id, required: true, readonly: !isNew, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}' })),
    h('label', {}, t('people.name'), h('input', { name: 'name', value: p.name || '' })),
    h('label', {}, t('people.kind'), h('select', { name: 'kind' }, ['resident', 'staff', 'visitor'].map((k) => h('option', { value: k, selected: p.kind === k }, t(`people.${k}`))))),
    h('label', {}, t('people.validFrom'), h('input', { name: 'validFrom', type: 'datetime-local', value: toLocal(p.validFrom) })),
    h('label', {}, t('people.validUntil'), h('input', { name: 'validUntil', type: 'datetime-local', value: toLocal(p.validUntil) })),
    h('label', {}, t('people.groups'), h('input', { name: 'doorGroups', value: (p.doorGroups || []).join(', ') })),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, t('people.save')), h('button', { type: 'button', class: 'link', onclick: () => onDone(false) }, t('cancel'))));
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(f));
    const body = Object.fromEntries(PERSON_KEYS.filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
    Object.assign(body, { id: d.id, kind: d.kind, doorGroups: d.doorGroups.split(/[,，\s]+/).filter(Boolean) });
    if (d.name) body.name = d.name;
    else delete body.name;
    for (const k of ['validFrom', 'validUntil']) {
      if (d[k]) body[k] = fromLocal(d[k]);
      else delete body[k];
    }
    try {
      const r = await cmd('person.upsert', body);
      toast(r.warnings ? r.warnings.join('; ') : t('cmd.done'), r.warnings ? 'error' : 'info');
      onDone(true);
    } catch (ex) {
      toast(errText(ex), 'error');
    }
  });
  return f;
}

export async function render(box) {
  const caps = await api('/api/capabilities');
  if (!caps.people.configured) {
    box.append(notConfigured(caps.people.reason));
    return;
  }
  const q = h('input', { type: 'search', placeholder: t('people.search'), 'data-testid': 'people-search' });
  const body = h('tbody');
  const total = h('span', { class: 'muted' });
  const side = h('div');
  const load = async () => {
    const r = await cmd('person.list', { limit: 200, ...(q.value.trim() ? { query: q.value.trim() } : {}) });
    total.textContent = `${r.total}`;
    body.replaceChildren(...r.people.map((p) => h('tr', {},
      h('td', {}, p.id), h('td', {}, p.name || ''), h('td', {}, t(`people.${p.kind}`)), h('td', {}, `${p.validFrom ? fmtTime(p.validFrom) : '…'} – ${p.validUntil ? fmtTime(p.validUntil) : '…'}`),
      h('td', {}, p.doorGroups.join(', ')), h('td', {}, r.faceAccess ? String(p.faceTemplates ?? 0) : '—'),
      h('td', { class: 'actions' },
        h('button', { class: 'link', onclick: () => side.replaceChildren(card(p.id, editor(p, done))) }, t('people.edit')),
        r.faceAccess ? h('label', { class: 'button link', title: t('people.enrol') }, t('people.photo'), h('input', { type: 'file', accept: 'image/jpeg,image/png', hidden: true, 'data-testid': `enrol-${p.id}`, onchange: (e) => enrol(p, e.target) })) : null,
        r.faceAccess && camera ? h('button', { class: 'link', title: t('people.captureHelp'), onclick: () => capture(p) }, t('people.capture')) : null,
        h('button', { class: 'link danger', onclick: () => del(p) }, t('people.delete'))))));
  };
  const done = (changed) => {
    side.replaceChildren();
    if (changed) load().catch((e) => toast(errText(e), 'error'));
  };
  const camera = caps.camera.configured;
  const enrolled = async (r) => {
    const faces = r.result && r.result.faces;
    if (faces && faces.rejected && faces.rejected.length) toast(faces.rejected.map((x) => x.message).join('; '), 'error');
    else if (faces && faces.error) toast(faces.error, 'error');
    else toast(`${t('cmd.done')}: ${faces ? faces.templates : ''}`);
    await load();
  };
  const capture = async (p) => {
    if (!confirm(t('people.captureHelp'))) return;
    try {
      await enrolled(await api(`/api/people/${encodeURIComponent(p.id)}/face/capture`, { method: 'POST' }));
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  const enrol = async (p, input) => {
    const file = input.files[0];
    input.value = '';
    if (!file) return;
    try {
      const r = await api(`/api/people/${encodeURIComponent(p.id)}/face`, { method: 'POST', raw: file, type: file.type || 'application/octet-stream' });
      return await enrolled(r);
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  const del = async (p) => {
    if (!confirm(t('people.confirmDelete', { id: p.id }))) return;
    try {
      await cmd('person.delete', { id: p.id });
      await load();
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  let timer;
  q.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((e) => toast(errText(e), 'error')), 250);
  });
  await load();
  box.append(
    h('div', { class: 'row' }, q, total, h('button', { onclick: () => side.replaceChildren(card(t('people.add'), editor(null, done))) }, t('people.add'))),
    side,
    table([t('people.id'), t('people.name'), t('people.kind'), `${t('people.validFrom')} – ${t('people.validUntil')}`, t('people.groups').split(/[（(]/)[0], t('people.faces'), ''], body),
  );
}
