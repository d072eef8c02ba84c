// DOM helpers shared by the pages: the connection banner, the transcript
// (with the interviewer's streaming message), the final summary. Text from
// the server is only ever set as text, never parsed as HTML.

/** Creates an element: `h('li', {class: 'x', dataset: {seq: 3}}, 'text', child)`. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

export function queryParam(name) {
  return new URLSearchParams(window.location.search).get(name);
}

/** `{currentQuestion: 2, totalQuestions: 3}` → "Question 2 of 3". */
export function progressText(progress) {
  if (!progress || !progress.totalQuestions) return 'Not started';
  const current = Math.max(1, Math.min(progress.currentQuestion || 1, progress.totalQuestions));
  return `Question ${current} of ${progress.totalQuestions}`;
}

/** Shows progress in a "Question n of m" label and a <progress> bar. */
export function renderProgress(labelEl, barEl, progress) {
  labelEl.textContent = progressText(progress);
  if (barEl && progress && progress.totalQuestions) {
    barEl.max = progress.totalQuestions;
    barEl.value = progress.answered || 0;
    barEl.textContent = `${progress.answered || 0} of ${progress.totalQuestions} answered`;
    barEl.setAttribute('aria-label', `${progress.answered || 0} of ${progress.totalQuestions} questions answered`);
  }
}

export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** "strong_hire" → "Strong hire". */
export function humanize(word) {
  if (!word) return '';
  const text = String(word).replace(/[_-]+/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const CLOSE_REASONS = {
  1008: 'the connection was closed for sending too much.',
  1009: 'a message was too large.',
  4001: 'this link is invalid or has expired.',
  4002: 'this interview does not exist.',
  4003: 'this interview is no longer open.',
  4004: 'this link does not give access to this interview.',
  4005: 'the interview was opened in another window.',
};

/** Codes after which a manual retry cannot help either. */
const HOPELESS = new Set([4001, 4002, 4003, 4004]);

/**
 * The connection banner: "Connecting…", "Reconnecting… attempt 2 of 5",
 * "Disconnected" with a Reconnect button; empty (and so invisible) when
 * live. The element itself stays in the page so that screen readers, which
 * only follow live regions that already exist, announce each change.
 */
export class ConnectionBanner {
  constructor(el, client) {
    this.el = el;
    this.client = client;
    el.setAttribute('role', 'status');
    el.setAttribute('aria-live', 'polite');
    client.on('state', (s) => this.render(s));
  }

  render({ state, attempt, maxAttempts, code, final }) {
    this.el.dataset.state = state;
    if (state === 'live' || state === 'ended' || state === 'idle') {
      this.el.replaceChildren();
      return;
    }
    if (state === 'connecting') {
      this.el.replaceChildren(h('span', { class: 'banner__text' }, 'Connecting…'));
      return;
    }
    if (state === 'reconnecting') {
      this.el.replaceChildren(
        h('span', { class: 'banner__text' }, `Reconnecting… attempt ${attempt} of ${maxAttempts}`),
      );
      return;
    }
    // disconnected
    const why = CLOSE_REASONS[code] || (final ? '' : 'the server could not be reached.');
    const children = [h('span', { class: 'banner__text' }, why ? `Disconnected: ${why}` : 'Disconnected')];
    if (!HOPELESS.has(code)) {
      children.push(
        h('button', { type: 'button', class: 'button button--small', onclick: () => this.client.reconnectNow() }, 'Reconnect'),
      );
    }
    this.el.replaceChildren(...children);
  }
}

/**
 * The conversation: finished lines (from the snapshot or from events) and
 * the interviewer's message while it streams in, with a blinking cursor.
 * Lines carry `data-speaker` and `data-seq` (the seq of the event that
 * finished them, as in the REST transcript).
 */
export class TranscriptView {
  constructor(list, thinking, { aiLabel = 'Interviewer', candidateLabel = 'Candidate' } = {}) {
    this.list = list;
    this.thinking = thinking;
    this.labels = { ai: aiLabel, candidate: candidateLabel };
    this.streams = new Map(); // messageId → <li> still streaming
    this.scroller = list.closest('.scroll') || list;
  }

  reset(entries) {
    this.list.replaceChildren();
    this.streams.clear();
    this.setThinking(false);
    for (const entry of entries) this._append(this._line(entry.speaker, entry.text, entry.seq));
  }

  setThinking(on) {
    if (this.thinking) this.thinking.hidden = !on;
  }

  get streaming() {
    return this.streams.size > 0;
  }

  streamStart(messageId) {
    this.setThinking(false);
    let line = this.streams.get(messageId);
    if (!line) {
      line = this._line('ai', '', null);
      line.classList.add('line--streaming');
      // Screen readers wait for the finished message instead of reading
      // every word as it arrives.
      line.setAttribute('aria-busy', 'true');
      line.querySelector('.line__text').after(h('span', { class: 'cursor', 'aria-hidden': 'true' }));
      this.streams.set(messageId, line);
      this._append(line);
    }
    return line;
  }

  token(messageId, text) {
    const line = this.streams.get(messageId) || this.streamStart(messageId);
    const keep = this._nearBottom();
    line.querySelector('.line__text').append(text);
    if (keep) this._scrollDown();
  }

  /** The full text replaces what streamed in, so a missed token heals here. */
  streamEnd(messageId, text, interrupted, seq) {
    const line = this.streams.get(messageId);
    this.streams.delete(messageId);
    if (!text) {
      if (line) line.remove();
      return;
    }
    const done = this._line('ai', text, seq, interrupted);
    if (line) line.replaceWith(done);
    else this._append(done);
  }

  /** Runs `change` (which may grow the list) and keeps the view pinned to the end if it was. */
  keepScrolled(change) {
    const keep = this._nearBottom();
    change();
    if (keep) this._scrollDown();
  }

  /** The interview is over: show the whole conversation, not a scroll box. */
  done() {
    this.scroller.classList.add('scroll--done');
  }

  answer(text, seq) {
    const line = this._line('candidate', text, seq);
    this._append(line);
    return line;
  }

  /** The finished lines as `{speaker, text}`, in order (for tests and copying). */
  lines() {
    return [...this.list.querySelectorAll('.line:not(.line--streaming)')].map((li) => ({
      speaker: li.dataset.speaker,
      text: li.querySelector('.line__text').textContent,
      seq: Number(li.dataset.seq),
    }));
  }

  _line(speaker, text, seq, interrupted = false) {
    const who = this.labels[speaker] || speaker;
    return h(
      'li',
      { class: `line line--${speaker}`, dataset: { speaker, ...(seq !== null ? { seq } : {}) } },
      h('span', { class: 'line__who' }, who),
      h('p', { class: 'line__text' }, text),
      interrupted ? h('span', { class: 'line__note' }, '(interrupted)') : null,
    );
  }

  _append(line) {
    const keep = this._nearBottom();
    this.list.append(line);
    if (keep) this._scrollDown();
  }

  _nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  _scrollDown() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}

/** The `interview-completed` summary, into `el` (a <section>). */
export function renderSummary(el, summary) {
  const s = summary || {};
  const list = (items) =>
    items && items.length ? h('ul', {}, items.map((t) => h('li', {}, t))) : h('p', { class: 'muted' }, 'None noted.');
  const categories = Object.entries(s.categoryScores || {});
  el.replaceChildren(
    h('h2', { id: 'summary-heading' }, 'Interview complete'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Overall score'),
      h('dd', { class: 'summary-score' }, s.overallScore === null || s.overallScore === undefined ? 'Not scored (nothing answered)' : `${s.overallScore} / 100`),
      h('dt', {}, 'Recommendation'),
      h('dd', {}, s.recommendation ? humanize(s.recommendation) : '—'),
      h('dt', {}, 'Questions answered'),
      h('dd', {}, String(s.questionsAnswered ?? 0)),
      h('dt', {}, 'Average response time'),
      h('dd', {}, formatDuration(s.averageResponseMs)),
    ),
    h('h3', {}, 'Strengths'),
    list(s.strengths),
    h('h3', {}, 'Areas to improve'),
    list(s.weaknesses),
    categories.length
      ? h(
          'div',
          {},
          h('h3', {}, 'By category'),
          h('ul', { class: 'categories' }, categories.map(([k, v]) => h('li', {}, `${humanize(k)}: ${v} / 100`))),
        )
      : null,
  );
  el.setAttribute('aria-labelledby', 'summary-heading');
  el.hidden = false;
}

/** Shows a message in an alert region for a while. */
export function flash(el, message, ms = 6000) {
  el.textContent = message;
  el.hidden = false;
  clearTimeout(el._flashTimer);
  el._flashTimer = setTimeout(() => {
    el.textContent = '';
    el.hidden = true;
  }, ms);
}
