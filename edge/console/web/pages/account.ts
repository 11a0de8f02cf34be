import { t } from '../i18n.js';
import { h, api, card, kv, toast, errText, session } from '../lib.js';
import type { SessionStarted } from '../../api-types.js';

// Every account's own page (any role): who is logged in, and the own password change
// (the current password is asked for; all sessions of the account end, this one is renewed).
export async function render(box: HTMLElement): Promise<undefined> {
  const status = h('p', { 'data-testid': 'password-status', role: 'status' });
  const own = h(
    'form',
    { class: 'stack', 'data-testid': 'password-form' },
    h('label', {}, t('password.current'), h('input', { name: 'current', type: 'password', required: true, autocomplete: 'current-password' })),
    h('label', {}, t('password.new'), h('input', { name: 'password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' })),
    h('label', {}, t('password.repeat'), h('input', { name: 'repeat', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' })),
    status,
    h('button', { type: 'submit', class: 'primary' }, t('password.change')),
  );
  own.addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = Object.fromEntries(new FormData(own));
    if (d.password !== d.repeat) {
      status.textContent = t('password.mismatch');
      status.className = 'error';
      return;
    }
    try {
      const r = await api<SessionStarted>('/api/password', { method: 'POST', body: { current: d.current, password: d.password } });
      session.csrf = r.csrf;
      status.textContent = t('password.changed');
      status.className = 'ok';
      toast(t('password.changed'));
      own.reset();
    } catch (ex) {
      status.textContent = errText(ex);
      status.className = 'error';
    }
  });
  box.append(
    card(
      t('account.who'),
      kv([
        [t('login.user'), h('span', { translate: 'no' }, session.user)],
        [t('users.role'), t(`role.${session.role}`)],
      ]),
    ),
    card(t('password.change'), own),
  );
}
