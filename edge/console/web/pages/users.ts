import { t } from '../i18n.js';
import { h, api, card, table, toast, errText, fmtTime, session, type PageContext } from '../lib.js';
import type { Ok, Role, UserList, UserRow } from '../../api-types.js';

// Accounts (admin): add with a role, change role (confirmed), reset password, unlock,
// delete. Everyone's own password is on the Account page (account.js).
const ROLES: readonly Role[] = ['viewer', 'technician', 'admin'];

export async function render(box: HTMLElement, ctx: PageContext): Promise<undefined> {
  const { users } = await api<UserList>('/api/users');
  const act = (f: () => Promise<unknown>) => async () => {
    try {
      await f();
      ctx.rerender();
    } catch (e) {
      toast(errText(e), 'error');
    }
  };
  const rows = users.map((u) => {
    const role = h(
      'select',
      { 'data-testid': `role-${u.name}` },
      ROLES.map((r) => h('option', { value: r, selected: r === u.role }, t(`role.${r}`))),
    );
    // A role change logs the account out everywhere: asked first, and put back if declined.
    role.onchange = async () => {
      if (!confirm(t('users.confirmRole', { user: u.name, from: t(`role.${u.role}`), to: t(`role.${role.value}`) }))) {
        role.value = u.role;
        return;
      }
      await act(async () => {
        await api<UserRow>(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { role: role.value } });
        toast(t('users.roleChanged', { user: u.name, role: t(`role.${role.value}`) }));
      })();
    };
    const locked = u.lockedUntil && u.lockedUntil > Date.now();
    return h(
      'tr',
      { 'data-user': u.name },
      h('td', { translate: 'no' }, u.name),
      h('td', {}, role),
      h('td', {}, fmtTime(u.lastLoginAt)),
      h(
        'td',
        { class: 'actions' },
        locked ? h('button', { class: 'link', onclick: act(() => api<UserRow>(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { unlock: true } })) }, `${t('users.locked')} · ${t('users.unlock')}`) : null,
        h(
          'button',
          {
            class: 'link',
            onclick: act(async () => {
              const pw = prompt(t('password.new'));
              if (pw) await api<UserRow>(`/api/users/${encodeURIComponent(u.name)}`, { method: 'PATCH', body: { password: pw } });
            }),
          },
          t('users.reset'),
        ),
        u.name !== session.user
          ? h(
              'button',
              {
                class: 'link danger',
                onclick: act(async () => {
                  if (confirm(t('users.confirmDelete', { user: u.name }))) await api<Ok>(`/api/users/${encodeURIComponent(u.name)}`, { method: 'DELETE' });
                }),
              },
              t('users.delete'),
            )
          : null,
      ),
    );
  });
  const f = h(
    'form',
    { class: 'row wrap' },
    h('input', { name: 'user', placeholder: t('login.user'), required: true, autocomplete: 'off' }),
    h(
      'select',
      { name: 'role' },
      ROLES.map((r) => h('option', { value: r }, t(`role.${r}`))),
    ),
    h('input', { name: 'password', type: 'password', placeholder: t('password.new'), required: true, minlength: 10, autocomplete: 'new-password' }),
    h('button', { type: 'submit' }, t('users.add')),
  );
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    act(() => api<UserRow>('/api/users', { method: 'POST', body: Object.fromEntries(new FormData(f)) }))();
  });
  box.append(card(t('users.title'), table([t('login.user'), t('users.role'), t('users.lastLogin'), ''], rows), h('h4', {}, t('users.add')), f), h('p', { class: 'muted' }, t('users.ownPassword')));
}
