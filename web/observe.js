// The recruiter's live view: `/observe?interview=<id>&token=<recruiter or
// admin JWT>`. Same client, same reconnect rules as the candidate's room;
// observers also get the candidate's comings and goings, proctoring alerts
// and the trust score.

import { InterviewClient } from './client.js';
import { $, ConnectionBanner, TranscriptView, flash, h, humanize, queryParam, renderProgress, renderSummary } from './ui.js';

const STATUS_LABELS = {
  PENDING: 'Not started',
  CREATED: 'Not started',
  ACTIVE: 'In progress',
  PAUSED: 'Paused',
  COMPLETED: 'Completed',
  EXPIRED: 'Expired',
};
const NEXT_ACTIONS = {
  follow_up: 'asks a follow-up',
  next_question: 'moves to the next question',
  complete: 'ends the interview',
};
const PAUSE_REASONS = {
  disconnect: 'the candidate disconnected',
  candidate: 'by the candidate',
  recruiter: 'by the recruiter',
  server: 'by the server',
};

const els = {
  title: $('title'),
  subtitle: $('subtitle'),
  status: $('status'),
  banner: $('banner'),
  progressLabel: $('progress-label'),
  progressBar: $('progress-bar'),
  transcript: $('transcript'),
  thinking: $('thinking'),
  hearing: $('hearing'),
  summary: $('summary'),
  candidate: $('candidate-state'),
  trust: $('trust-score'),
  trustMeter: $('trust-meter'),
  average: $('average-score'),
  scores: $('scores'),
  scoresEmpty: $('scores-empty'),
  alerts: $('alerts'),
  alertsEmpty: $('alerts-empty'),
  end: $('end'),
  error: $('error'),
};

const interviewId = queryParam('interview');
const token = queryParam('token');
if (!interviewId || !token) {
  els.status.textContent = 'No interview';
  els.error.textContent = 'This page needs ?interview=<id>&token=<token> in its address.';
  els.error.hidden = false;
  // Nothing else can work without it. Stop this module here, quietly: an
  // uncaught error would only add noise to the console.
  await new Promise(() => {});
}

// A fresh page asks for the whole log (lastSeq 0) rather than resuming from
// this tab's last seq: the scores, alerts and trust score are only in the
// events, not in the snapshot, so a reload must replay them to show them.
// Reconnects within the page still resume from the last seq processed.
const client = new InterviewClient({ token, interviewId, role: 'observer', initialLastSeq: 0 });
window.__interviewClient = client;

const transcript = new TranscriptView(els.transcript, els.thinking);
new ConnectionBanner(els.banner, client);

const view = {
  status: null,
  pauseReason: null,
  progress: null,
  candidateConnected: null,
  trustScore: 100,
  live: false,
  connection: 'idle',
  ending: false,
  /** questionId → {order, followUp}, to name what each score is for. */
  questions: new Map(),
  /** questionId → the candidate's latest answer line, to attach its evaluation. */
  answers: new Map(),
  scores: [],
};

function render() {
  const status = view.status;
  let label = status
    ? STATUS_LABELS[status] || humanize(status.toLowerCase())
    : view.connection === 'disconnected'
      ? 'Not connected'
      : 'Connecting';
  if (status === 'PAUSED' && view.pauseReason) label = `Paused: ${PAUSE_REASONS[view.pauseReason] || view.pauseReason}`;
  els.status.textContent = label;
  els.status.dataset.status = status || '';
  renderProgress(els.progressLabel, els.progressBar, view.progress);

  const c = view.candidateConnected;
  const over = status === 'COMPLETED' || status === 'EXPIRED';
  // At the end the server closes every socket and logs nothing about it.
  els.candidate.textContent = over ? 'Interview over' : c === null ? 'Not joined yet' : c ? 'Connected' : 'Disconnected';
  els.candidate.dataset.connected = over || c === null ? '' : String(c);
  if (over) {
    transcript.done();
    els.subtitle.textContent = 'This interview is over: this is its record.';
  }

  els.trust.textContent = String(view.trustScore);
  els.trustMeter.value = view.trustScore;

  els.scoresEmpty.hidden = view.scores.length > 0;
  els.average.textContent = view.scores.length
    ? `${Math.round(view.scores.reduce((a, b) => a + b, 0) / view.scores.length)} / 100`
    : '—';
  els.alertsEmpty.hidden = els.alerts.children.length > 0;

  els.end.hidden = !(status === 'ACTIVE' || status === 'PAUSED' || status === 'CREATED');
  els.end.disabled = !view.live;
  if (!view.ending) els.end.textContent = 'End interview';
}

function questionName(questionId) {
  const q = view.questions.get(questionId);
  if (!q) return questionId || 'Answer';
  return q.followUp ? `Question ${q.order}, follow-up` : `Question ${q.order}`;
}

// ---------------------------------------------------------------------------
// Server events

client.on('state', (s) => {
  view.live = s.state === 'live';
  view.connection = s.state;
  render();
});

client.on('snapshot', (s) => {
  const session = s.session || {};
  view.status = s.interview ? s.interview.status : view.status;
  view.progress = session.progress || null;
  view.candidateConnected = typeof session.candidateConnected === 'boolean' ? session.candidateConnected : null;
  view.trustScore = typeof session.trustScore === 'number' ? session.trustScore : 100;
  view.pauseReason = null;
  view.answers.clear();
  view.scores = [];
  els.scores.replaceChildren();
  els.alerts.replaceChildren();
  els.summary.hidden = true;
  transcript.reset(s.transcript);
  if (s.interview) {
    els.title.textContent = s.interview.candidateName ? `Interview with ${s.interview.candidateName}` : 'Live interview';
    document.title = `${els.title.textContent} · interviewd`;
  }
  els.subtitle.textContent = s.isLive === false ? 'This interview is over: this is its record.' : 'Watching live.';
  render();
});

client.on('candidate-joined', () => {
  view.candidateConnected = true;
  render();
});

client.on('interview-started', () => {
  view.status = 'ACTIVE';
  render();
});

client.on('ai-thinking', () => transcript.setThinking(true));
client.on('ai-stream-start', (d) => transcript.streamStart(d.messageId));
client.on('ai-token', (d) => transcript.token(d.messageId, d.text));
client.on('ai-stream-end', (d, frame) => transcript.streamEnd(d.messageId, d.text, d.interrupted, frame.seq));

client.on('question', (d) => {
  view.questions.set(d.questionId, { order: d.order, followUp: d.followUp });
  view.progress = { ...(view.progress || {}), currentQuestion: d.order, totalQuestions: d.total };
  render();
});

client.on('transcription', (d) => {
  els.hearing.hidden = false;
  els.hearing.textContent = `${d.isFinal ? 'Heard' : 'Hearing'}: ${d.text}`;
});

client.on('candidate-answer', (d, frame) => {
  els.hearing.hidden = true;
  const line = transcript.answer(d.text, frame.seq);
  view.answers.set(d.questionId, line);
});

client.on('evaluation', (d) => {
  view.scores.push(d.score);
  const card = h(
    'div',
    { class: 'evaluation' },
    h('p', { class: 'evaluation__score' }, h('span', { class: 'score' }, `${d.score} / 100`), ` · ${NEXT_ACTIONS[d.nextAction] || humanize(d.nextAction)}`),
    d.feedback ? h('p', { class: 'evaluation__feedback' }, d.feedback) : null,
    d.strengths && d.strengths.length ? h('p', {}, h('strong', {}, 'Strengths: '), d.strengths.join('; ')) : null,
    d.weaknesses && d.weaknesses.length ? h('p', {}, h('strong', {}, 'Weaknesses: '), d.weaknesses.join('; ')) : null,
  );
  const line = view.answers.get(d.questionId);
  if (line) transcript.keepScrolled(() => line.append(card));
  els.scores.append(
    h('li', { class: 'scores__item', dataset: { questionId: d.questionId } }, h('span', {}, questionName(d.questionId)), h('span', { class: 'score' }, `${d.score}`)),
  );
  render();
});

client.on('progress-update', (d) => {
  view.progress = d.progress;
  render();
});

client.on('proctor-alert', (d, frame) => {
  const time = frame.ts ? new Date(frame.ts).toLocaleTimeString() : '';
  els.alerts.prepend(
    h(
      'li',
      { class: `alert alert--${d.severity}` },
      h('span', { class: 'alert__meta' }, `${humanize(d.severity)} · ${humanize(d.type)}${time ? ` · ${time}` : ''}`),
      h('span', { class: 'alert__message' }, d.message),
    ),
  );
  render();
});

client.on('trust-score-update', (d) => {
  view.trustScore = d.trustScore;
  render();
});

client.on('interview-interrupted', () => {
  view.candidateConnected = false;
  render();
});

client.on('interview-paused', (d) => {
  view.status = 'PAUSED';
  view.pauseReason = d.reason;
  if (d.reason === 'disconnect') view.candidateConnected = false;
  transcript.setThinking(false);
  render();
});

client.on('interview-resumed', () => {
  view.status = 'ACTIVE';
  view.pauseReason = null;
  render();
});

client.on('interview-completed', (d) => {
  view.status = 'COMPLETED';
  transcript.setThinking(false);
  renderSummary(els.summary, d.summary);
  render();
});

client.on('interview-expired', () => {
  view.status = 'EXPIRED';
  render();
});

client.on('error', (d) => flash(els.error, d.message || d.code || 'Something went wrong.'));

// ---------------------------------------------------------------------------
// Controls

let endTimer = null;
els.end.addEventListener('click', () => {
  if (!view.ending) {
    view.ending = true;
    els.end.textContent = 'Click again to end for everyone';
    endTimer = setTimeout(() => {
      view.ending = false;
      render();
    }, 4000);
    return;
  }
  clearTimeout(endTimer);
  view.ending = false;
  if (!client.send('end-interview', { reason: 'ended by the recruiter' })) {
    flash(els.error, 'Not connected: wait for the connection to come back and try again.');
  }
  render();
});

render();
client.connect();
