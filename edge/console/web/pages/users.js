import { t } from '../i18n.js';
import { h, api, card, table, toast, errText, fmtTime, session } from '../lib.js';

// Accounts (admin): add with a role, change role, reset password, unlock, delete; and
// everyone's own password change.
const ROLES = ['viewer', 'technician', 'admin'];

export async function render(box, ctx) {
  const { users } = await api('/api/users');
  const act = (f) => async () => {
    try {
      await f();
      ctx.rerender();
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  const rows = users.map((u) => {
    const role = h('select', {}, ROLES.map((r) => h('option', { value: r, selected: r === u.role }, t(`role.${r}`))));
    role.onchange = act(() => api(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { role: role.value } }));
    const locked = u.lockedUntil && u.lockedUntil > Date.now();
    return h('tr', {}, h('td', {}, u.name), h('td', {}, role), h('td', {}, fmtTime(u.lastLoginAt)),
      h('td', { class: 'actions' },
        locked ? h('button', { class: 'link', onclick: act(() => api(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { unlock: true } })) }, `${t('users.locked')} · ${t('users.unlock')}`) : null,
        h('button', { class: 'link', onclick: act(async () => {
          const pw = prompt(t('password.new'));
          if (pw) await api(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { password: pw } });
        }) }, t('users.reset')),
        u.name !== session.user ? h('button', { class: 'link danger', onclick: act(async () => {
          if (confirm(`${t('users.delete')} ${u.name}?`)) await api(`/api/users/${encodeURIComponent(u.name)}`, { method: 'DELETE' });
        }) }, t('users.delete')) : null));
  });
  const f = h('form', { class: 'row wrap' },
    h('input', { name: 'user', placeholder: t('login.user'), required: true, autocomplete: 'off' }),
    h('select', { name: 'role' }, ROLES.map((r) => h('option', { value: r }, t(`role.${r}`)))),
    h('input', { name: 'password', type: 'password', placeholder: t('password.new'), required: true, minlength: 10, autocomplete: 'new-password' }),
    h('button', { type: 'submit' }, t('users.add')));
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => api('/api/users', { method: 'POST', body: Object.fromEntries(new FormData(f)) }))();
  });
  const own = h('form', { class: 'row wrap' },
    h('input', { name: 'current', type: 'password', placeholder: t('password.current'), required: true, autocomplete: 'current-password' }),
    h('input', { name: 'password', type: 'password', placeholder: t('password.new'), required: true, minlength: 10, autocomplete: 'new-password' }),
    h('button', { type: 'submit' }, t('password.change')));
  own.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await api('/api/password', { method: 'POST', body: Object.fromEntries(new FormData(own)) });
      session.csrf = r.csrf;
      toast(t('cmd.done'));
      own.reset();
    } catch (ex) {
      toast(errText(ex), 'error');
    }
  });
  box.append(card(t('users.title'), table([t('login.user'), t('users.role'), t('users.lastLogin'), ''], rows), f), card(t('password.change'), own));
}
