// The operator's view: `/ops?token=<admin JWT or ADMIN_TOKEN>`. Polls the
// admin REST API every 2 s; the token goes in an Authorization header, the
// way the REST API wants it.

import { decodeJwtClaims } from './client.js';
import { $, formatDuration, h, queryParam } from './ui.js';

const REFRESH_MS = 2000;

const els = {
  updated: $('updated'),
  connected: $('stat-connected'),
  sessions: $('stat-sessions'),
  time: $('stat-time'),
  body: $('sessions-body'),
  empty: $('sessions-empty'),
  error: $('error'),
};

const token = queryParam('token');
// Links to the recruiter view work only with a JWT: the socket takes no
// static ADMIN_TOKEN.
const claims = token ? decodeJwtClaims(token) : null;
const canObserve = Boolean(claims && claims.role === 'admin');

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

async function getJson(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) message = `${res.status}: ${body.error.message}`;
    } catch {
      /* not JSON */
    }
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

function cell(label, ...content) {
  return h('td', { dataset: { label } }, ...content);
}

function yesNo(value) {
  return h('span', { class: `flag flag--${value ? 'yes' : 'no'}` }, value ? 'Yes' : 'No');
}

function renderSessions(sessions) {
  els.body.replaceChildren(
    ...sessions.map((s) =>
      h(
        'tr',
        { dataset: { interviewId: s.interviewId } },
        cell(
          'Interview',
          canObserve
            ? h('a', { href: `/observe?interview=${encodeURIComponent(s.interviewId)}&token=${encodeURIComponent(token)}`, class: 'mono' }, s.interviewId)
            : h('span', { class: 'mono' }, s.interviewId),
        ),
        cell('State', h('span', { class: 'pill pill--small', dataset: { status: String(s.state || '').toUpperCase() } }, s.state)),
        cell('Age', formatDuration(s.ageMs)),
        cell('Candidate', yesNo(s.candidateConnected)),
        cell('Observers', String(s.observers ?? 0)),
        cell('Last seq', String(s.lastSeq ?? '—')),
        cell('LLM stream', yesNo(s.llmStreamActive)),
        cell('Node', h('span', { class: 'mono' }, s.node ?? '—')),
      ),
    ),
  );
  els.empty.hidden = sessions.length > 0;
}

async function refresh() {
  try {
    const [list, stats] = await Promise.all([getJson('/v1/admin/sessions'), getJson('/v1/websocket/stats')]);
    renderSessions(list.sessions || []);
    els.connected.textContent = String(stats.connected);
    els.sessions.textContent = String(stats.sessions);
    els.time.textContent = stats.timestamp ? new Date(stats.timestamp).toLocaleTimeString() : '—';
    els.updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    showError('');
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      // A wrong token stays wrong: stop polling rather than hammer the API.
      showError(`Not allowed (${err.message}). Open this page with an admin token: /ops?token=…`);
      els.updated.textContent = 'Stopped.';
      return;
    }
    showError(`Could not refresh: ${err.message}. Retrying…`);
  }
  setTimeout(refresh, REFRESH_MS);
}

if (!token) {
  showError('This page needs an admin token: /ops?token=…');
  els.updated.textContent = 'Stopped.';
} else {
  refresh();
}
