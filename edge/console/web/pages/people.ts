import { t } from '../i18n.js';
import { h, api, command, card, table, notConfigured, toast, errText, fmtTime } from '../lib.js';
import type { Capabilities, CommandAnswer, DoorStatusResult, PersonRow, PersonUpsertResult, TimeWindowRow } from '../../api-types.js';

type DoorGroups = DoorStatusResult['groups'];

// People: search; add or edit a person in one form — name, kind, validity, door groups
// picked from the gateway's groups, weekly schedule, enabled, and face photos (sent with
// the person in one person.upsert, so a new resident is stored and enrolled in one step);
// enrol more photos or from the door camera; delete. On a phone each person is a card
// whose actions wrap, not a wide table row.
const cmd = command;
const toLocal = (ms: number | undefined) => (ms ? new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : '');
const fromLocal = (s: string) => (s ? new Date(s).getTime() : undefined);
const PERSON_KEYS: ReadonlyArray<keyof PersonRow> = ['id', 'name', 'kind', 'validFrom', 'validUntil', 'doorGroups', 'schedule', 'enabled', 'note', 'cards', 'needsSecondFactor'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
// Photos are scaled down on the phone before they are sent: a 12-megapixel picture is
// ~4 MB, a 1280 px JPEG ~200 KB and still far above what the face models look at.
const PHOTO_MAX_PX = 1280;

async function photoBase64(file: Blob) {
  let blob: Blob | null = file;
  try {
    const bmp = await createImageBitmap(file);
    const k = Math.min(1, PHOTO_MAX_PX / Math.max(bmp.width, bmp.height));
    const c = document.createElement('canvas');
    c.width = Math.round(bmp.width * k);
    c.height = Math.round(bmp.height * k);
    c.getContext('2d')!.drawImage(bmp, 0, 0, c.width, c.height);
    bmp.close();
    blob = await new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.9));
  } catch {
    // Not decodable here: sent as it is; the gateway checks it and says what is wrong.
  }
  const buf = new Uint8Array(await blob!.arrayBuffer());
  let bin = '';
  for (let i = 0; i < buf.length; i += 0x8000) bin += String.fromCharCode(...buf.subarray(i, i + 0x8000));
  return btoa(bin);
}

function scheduleEditor(windows: readonly TimeWindowRow[] | undefined) {
  const list = h('div', { 'data-testid': 'schedule' });
  const add = (w: TimeWindowRow = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '07:00', end: '19:00' }) => {
    const row = h(
      'div',
      { class: 'schedule-row', 'data-testid': 'schedule-row' },
      h(
        'div',
        { class: 'days' },
        DAYS.map((d) => h('label', {}, h('input', { type: 'checkbox', value: d, checked: w.days.includes(d) }), t(`day.${d}`))),
      ),
      h('input', { type: 'time', value: w.start, class: 'start', 'aria-label': t('people.from') }),
      '–',
      h('input', { type: 'time', value: w.end, class: 'end', 'aria-label': t('people.to') }),
      h('button', { type: 'button', class: 'link danger', onclick: () => row.remove() }, t('people.removeWindow')),
    );
    list.append(row);
  };
  for (const w of windows || []) add(w);
  const read = () =>
    [...list.querySelectorAll('.schedule-row')].map((r) => ({
      days: [...r.querySelectorAll<HTMLInputElement>('.days input:checked')].map((i) => i.value),
      start: r.querySelector<HTMLInputElement>('.start')!.value,
      end: r.querySelector<HTMLInputElement>('.end')!.value,
    }));
  const el = h('fieldset', {}, h('legend', {}, t('people.schedule')), h('small', { class: 'muted' }, t('people.scheduleHelp')), list, h('button', { type: 'button', class: 'link', 'data-testid': 'schedule-add', onclick: () => add() }, t('people.addWindow')));
  return { el, read };
}

function editor(person: PersonRow | null, groups: DoorGroups, faceAccess: boolean, onDone: (changed: boolean) => void) {
  const isNew = !person;
  const p: PersonRow = person || { id: '', kind: 'resident', doorGroups: [], enabled: true, hasPin: false };
  const known = new Set(groups.map((g) => g.id));
  // Groups picked from those configured; one the person has that no longer exists stays listed, marked.
  const groupBoxes = [...groups.map((g) => ({ id: g.id, label: g.name || g.id })), ...p.doorGroups.filter((g) => !known.has(g)).map((g) => ({ id: g, label: `${g} (${t('people.unknownGroup')})` }))].map((g) =>
    h('label', {}, h('input', { type: 'checkbox', name: 'doorGroups', value: g.id, checked: p.doorGroups.includes(g.id) }), h('span', { translate: 'no' }, g.label)),
  );
  const sched = scheduleEditor(p.schedule);
  const photos = h('input', { type: 'file', name: 'photos', accept: 'image/jpeg,image/png,image/webp', multiple: true, 'data-testid': 'person-photos' });
  const thumbs = h('div', { class: 'thumbs' });
  photos.onchange = () => thumbs.replaceChildren(...[...(photos.files ?? [])].map((f) => h('img', { src: URL.createObjectURL(f), alt: f.name })));
  const status = h('p', { class: 'muted', 'data-testid': 'person-status' });
  const f = h(
    'form',
    { class: 'stack', 'data-testid': 'person-form' },
    h('label', {}, t('people.id'), h('input', { name: 'id', value: p.id, required: true, readonly: !isNew, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}', autocapitalize: 'off' })),
    h('label', {}, t('people.name'), h('input', { name: 'name', value: p.name || '' })),
    h(
      'label',
      {},
      t('people.kind'),
      h(
        'select',
        { name: 'kind' },
        ['resident', 'staff', 'visitor'].map((k) => h('option', { value: k, selected: p.kind === k }, t(`people.${k}`))),
      ),
    ),
    h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'enabled', checked: p.enabled !== false, 'data-testid': 'person-enabled' }), t('people.enabled')),
    h('label', {}, t('people.validFrom'), h('input', { name: 'validFrom', type: 'datetime-local', value: toLocal(p.validFrom) })),
    h('label', {}, t('people.validUntil'), h('input', { name: 'validUntil', type: 'datetime-local', value: toLocal(p.validUntil) })),
    h('fieldset', { 'data-testid': 'door-groups' }, h('legend', {}, t('people.doorGroups')), groupBoxes.length ? h('div', { class: 'chips' }, groupBoxes) : h('p', { class: 'muted' }, t('people.noGroups'))),
    sched.el,
    h(
      'fieldset',
      { 'data-testid': 'second-factor' },
      h('legend', {}, t('people.secondFactor')),
      h('label', {}, t('people.cards'), h('input', { name: 'cards', value: (p.cards || []).join(', '), autocapitalize: 'off', 'data-testid': 'person-cards' }), h('small', { class: 'muted' }, t('people.cardsHelp'))),
      // Write-only: the PIN is never sent back, only whether one is set.
      h('label', {}, t('people.pin'), h('input', { name: 'pin', type: 'password', inputmode: 'numeric', autocomplete: 'new-password', pattern: '[0-9]{4,8}', placeholder: p.hasPin ? t('people.pinSet') : t('people.pinNone'), 'data-testid': 'person-pin' })),
      p.hasPin ? h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'clearPin', 'data-testid': 'person-clear-pin' }), t('people.clearPin')) : null,
      h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'needsSecondFactor', checked: p.needsSecondFactor === true, 'data-testid': 'person-needs-second-factor' }), t('people.needsSecondFactor')),
    ),
    faceAccess ? h('label', {}, isNew ? t('people.photosNew') : t('people.photosMore'), photos, thumbs) : null,
    // Consent is the resident's own decision, asked for explicitly: unticked unless given.
    faceAccess ? h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'gateUpdates', checked: p.faceGateUpdates === true, 'data-testid': 'person-gate-updates' }), t('people.gateUpdates')) : null,
    faceAccess && p.faceLearned ? h('p', { class: 'small muted' }, t('people.learned', { n: p.faceLearned })) : null,
    status,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, t('people.save')), h('button', { type: 'button', class: 'link', onclick: () => onDone(false) }, t('cancel'))),
  );
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = new FormData(f);
    const body: Record<string, unknown> = Object.fromEntries(PERSON_KEYS.filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
    Object.assign(body, { id: String(d.get('id')), kind: d.get('kind'), doorGroups: d.getAll('doorGroups').map(String), enabled: f.querySelector<HTMLInputElement>('[name=enabled]')!.checked });
    const name = String(d.get('name') || '').trim();
    if (name) body.name = name;
    else delete body.name;
    for (const k of ['validFrom', 'validUntil']) {
      if (d.get(k)) body[k] = fromLocal(String(d.get(k)));
      else delete body[k];
    }
    const windows = sched.read();
    if (windows.some((w) => !w.days.length || !w.start || !w.end)) {
      status.textContent = t('people.badWindow');
      status.className = 'error';
      return;
    }
    if (windows.length) body.schedule = windows;
    else delete body.schedule;
    body.cards = String(d.get('cards') || '')
      .split(/[\s,，、]+/)
      .filter(Boolean);
    body.needsSecondFactor = f.querySelector<HTMLInputElement>('[name=needsSecondFactor]')!.checked;
    const pin = String(d.get('pin') || '');
    if (pin && !/^[0-9]{4,8}$/.test(pin)) {
      status.textContent = t('people.badPin');
      status.className = 'error';
      return;
    }
    if (pin) body.pin = pin;
    else if (f.querySelector<HTMLInputElement>('[name=clearPin]')?.checked) body.pin = null;
    const btn = f.querySelector<HTMLButtonElement>('button[type=submit]')!;
    btn.disabled = true;
    try {
      const files = faceAccess ? [...(photos.files ?? [])] : [];
      if (files.length) {
        status.textContent = t('people.preparing', { n: files.length });
        body.faces = { photos: await Promise.all(files.map((f) => photoBase64(f))) };
      }
      const consent = faceAccess ? f.querySelector<HTMLInputElement>('[name=gateUpdates]')!.checked : undefined;
      // Sent only when it changes: withdrawing deletes what was learned.
      if (consent !== undefined && consent !== (p.faceGateUpdates === true)) body.faces = { ...((body.faces as object | undefined) || {}), gateUpdates: consent };
      status.textContent = t('loading');
      const r = await cmd('person.upsert', body);
      const msgs: string[] = [];
      if (r.warnings) msgs.push(t('people.groupWarning'));
      const faces = r.faces;
      if (faces && faces.available === false) msgs.push(t('people.noFaceAccess'));
      else if (faces?.error) msgs.push(t('people.enrolFailed'));
      else if (faces?.rejected?.length) msgs.push(t('people.photosRejected', { n: faces.rejected.length, reasons: faces.rejected.map((x) => t(`reason.${x.code}`)).join('、') }));
      if (msgs.length) toast(msgs.join('；'), 'error');
      else toast(faces && faces.templates !== undefined ? t('people.savedFaces', { n: faces.templates }) : t('people.saved'));
      onDone(true);
    } catch (ex) {
      status.textContent = errText(ex);
      status.className = 'error';
    } finally {
      btn.disabled = false;
    }
  });
  return f;
}

export async function render(box: HTMLElement): Promise<undefined> {
  const caps = await api<Capabilities>('/api/capabilities');
  if (!caps.people?.configured) {
    box.append(notConfigured(caps.people?.reason));
    return;
  }
  const status = await cmd('door.status').catch(() => ({ groups: [] as DoorGroups }));
  const groups = status.groups || [];
  const groupName = new Map(groups.map((g) => [g.id, g.name || g.id]));
  const q = h('input', { type: 'search', placeholder: t('people.search'), 'data-testid': 'people-search' });
  const body = h('tbody');
  const cards = h('div', { class: 'person-cards', 'data-testid': 'person-cards' });
  const total = h('span', { class: 'muted' });
  const side = h('div');
  const camera = caps.camera?.configured === true;
  let faceAccess = caps.faces?.configured === true;
  const open = (p: PersonRow | null) => {
    side.replaceChildren(card(p ? p.name || p.id : t('people.add'), editor(p, groups, faceAccess, done)));
    side.scrollIntoView({ block: 'start' });
  };
  const actionsFor = (p: PersonRow) => [
    h('button', { class: 'link', 'data-testid': `edit-${p.id}`, onclick: () => open(p) }, t('people.edit')),
    faceAccess ? h('label', { class: 'button link', title: t('people.enrol') }, t('people.photo'), h('input', { type: 'file', accept: 'image/jpeg,image/png', hidden: true, 'data-testid': `enrol-${p.id}`, onchange: (e: Event) => enrol(p, e.target as HTMLInputElement) })) : null,
    faceAccess && camera ? h('button', { class: 'link', title: t('people.captureHelp'), onclick: () => capture(p) }, t('people.capture')) : null,
    h('button', { class: 'link danger', onclick: () => del(p) }, t('people.delete')),
  ];
  const validity = (p: PersonRow) => `${p.validFrom ? fmtTime(p.validFrom) : '…'} – ${p.validUntil ? fmtTime(p.validUntil) : '…'}`;
  const groupsText = (p: PersonRow) => p.doorGroups.map((g) => groupName.get(g) || g).join('、');
  const load = async () => {
    const r = await cmd('person.list', { limit: 200, ...(q.value.trim() ? { query: q.value.trim() } : {}) });
    faceAccess = r.faceAccess;
    total.textContent = t('people.total', { n: r.total });
    body.replaceChildren(
      ...r.people.map((p) =>
        h(
          'tr',
          { 'data-person': p.id, class: p.enabled === false ? 'muted' : '' },
          h('td', { translate: 'no' }, p.id),
          h('td', { translate: 'no' }, p.name || ''),
          h('td', {}, t(`people.${p.kind}`)),
          h('td', {}, p.enabled === false ? t('people.disabled') : t('people.active')),
          h('td', {}, validity(p)),
          h('td', { translate: 'no' }, groupsText(p)),
          h('td', {}, r.faceAccess ? String(p.faceTemplates ?? 0) : '—'),
          h('td', { class: 'actions' }, actionsFor(p)),
        ),
      ),
    );
    cards.replaceChildren(
      ...r.people.map((p) =>
        h(
          'div',
          { class: 'person-card', 'data-person': p.id },
          h('div', { class: 'row' }, h('strong', { translate: 'no' }, p.name || p.id), h('span', { class: 'muted' }, `${t(`people.${p.kind}`)} · ${p.enabled === false ? t('people.disabled') : t('people.active')}`)),
          h('p', { class: 'small muted' }, h('span', { translate: 'no' }, p.id), ` · ${t('people.faces')} ${r.faceAccess ? (p.faceTemplates ?? 0) : '—'} · `, h('span', { translate: 'no' }, groupsText(p))),
          p.validFrom || p.validUntil ? h('p', { class: 'small muted' }, validity(p)) : null,
          h('div', { class: 'actions' }, actionsFor(p)),
        ),
      ),
    );
  };
  const done = (changed: boolean) => {
    side.replaceChildren();
    if (changed) load().catch((e) => toast(errText(e), 'error'));
  };
  const enrolled = async (r: CommandAnswer<PersonUpsertResult>) => {
    const faces = r.result?.faces;
    if (faces?.rejected?.length) toast(t('people.photosRejected', { n: faces.rejected.length, reasons: faces.rejected.map((x) => t(`reason.${x.code}`)).join('、') }), 'error');
    else if (faces?.error) toast(t('people.enrolFailed'), 'error');
    else toast(t('people.savedFaces', { n: faces ? (faces.templates ?? 0) : 0 }));
    await load();
  };
  const capture = async (p: PersonRow) => {
    if (!confirm(t('people.captureHelp'))) return;
    try {
      await enrolled(await api<CommandAnswer<PersonUpsertResult>>(`/api/people/${encodeURIComponent(p.id)}/face/capture`, { method: 'POST' }));
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  const enrol = async (p: PersonRow, input: HTMLInputElement) => {
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    try {
      const r = await api<CommandAnswer<PersonUpsertResult>>(`/api/people/${encodeURIComponent(p.id)}/face`, { method: 'POST', raw: file, type: file.type || 'application/octet-stream' });
      return await enrolled(r);
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  const del = async (p: PersonRow) => {
    if (!confirm(t('people.confirmDelete', { id: p.name || p.id }))) return;
    try {
      await cmd('person.delete', { id: p.id });
      await load();
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  q.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((e) => toast(errText(e), 'error')), 250);
  });
  await load();
  const tbl = table([t('people.id'), t('people.name'), t('people.kind'), t('people.state'), `${t('people.validFrom')} – ${t('people.validUntil')}`, t('people.doorGroups'), t('people.faces'), ''], body);
  tbl.classList.add('people-table');
  box.append(h('div', { class: 'row' }, q, total, h('button', { class: 'primary', 'data-testid': 'person-add', onclick: () => open(null) }, t('people.add'))), side, tbl, cards);
}
