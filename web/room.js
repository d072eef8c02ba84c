// The candidate's room: `/room?token=<join token>`. The interview id comes
// from the token itself, so the invitation link is all a candidate needs.

import { InterviewClient, decodeJwtClaims } from './client.js';
import { $, ConnectionBanner, TranscriptView, flash, humanize, queryParam, renderProgress, renderSummary } from './ui.js';

const STATUS_LABELS = {
  PENDING: 'Not started',
  CREATED: 'Not started',
  ACTIVE: 'In progress',
  PAUSED: 'Paused',
  COMPLETED: 'Completed',
  EXPIRED: 'Expired',
};
const TERMINAL = new Set(['COMPLETED', 'EXPIRED']);
/** The spec's MediaRecorder timeslice: one binary frame every 250 ms. */
const AUDIO_TIMESLICE_MS = 250;

const els = {
  title: $('title'),
  subtitle: $('subtitle'),
  status: $('status'),
  banner: $('banner'),
  progressLabel: $('progress-label'),
  progressBar: $('progress-bar'),
  start: $('start'),
  pause: $('pause'),
  resume: $('resume'),
  end: $('end'),
  transcript: $('transcript'),
  thinking: $('thinking'),
  form: $('answer-form'),
  question: $('current-question'),
  answer: $('answer'),
  send: $('send'),
  mic: $('mic'),
  micStatus: $('mic-status'),
  summary: $('summary'),
  error: $('error'),
};

const token = queryParam('token');
const claims = token ? decodeJwtClaims(token) : null;
if (!claims || !claims.interviewId) {
  els.status.textContent = 'No interview';
  els.error.textContent = 'This link does not name an interview. Open the link from your invitation again.';
  els.error.hidden = false;
  els.form.hidden = true;
  // Nothing else can work without it. Stop this module here, quietly: an
  // uncaught error would only add noise to the console.
  await new Promise(() => {});
}

const client = new InterviewClient({ token, interviewId: claims.interviewId, role: 'candidate' });
// For tests and for debugging from the console.
window.__interviewClient = client;

const transcript = new TranscriptView(els.transcript, els.thinking, { candidateLabel: 'You' });
new ConnectionBanner(els.banner, client);

/** What the page shows, kept in one place and drawn by render(). */
const view = {
  live: false,
  /** The client's connection state (see client.js). */
  connection: 'idle',
  status: null,
  progress: null,
  question: null,
  /** A question was asked and not answered yet. */
  questionOpen: false,
  /** An answer was sent and the server has not taken it yet. */
  answerPending: false,
  startPending: false,
  pauseReason: null,
  ending: false,
};

/** The MediaRecorder while recording, else null. */
let recorder = null;
let micStream = null;
/** Keeps audio frames, and the final response-complete, in order. */
let sendChain = Promise.resolve();
/** `ref` of the answer in flight: an error echoing it means it was refused. */
let answerRef = null;
let refCounter = 0;

function canAnswer() {
  return view.live && view.status === 'ACTIVE' && view.questionOpen && !view.answerPending;
}

function render() {
  const status = view.status;
  const terminal = TERMINAL.has(status);
  els.status.textContent = status
    ? STATUS_LABELS[status] || humanize(status.toLowerCase())
    : view.connection === 'disconnected'
      ? 'Not connected'
      : 'Connecting';
  if (status === 'PAUSED' && view.pauseReason === 'disconnect') els.status.textContent = 'Paused (reconnecting)';
  els.status.dataset.status = status || '';
  renderProgress(els.progressLabel, els.progressBar, view.progress);

  els.start.hidden = !(status === 'CREATED' || status === 'PENDING');
  els.start.disabled = !view.live || view.startPending;
  els.pause.hidden = status !== 'ACTIVE';
  els.pause.disabled = !view.live;
  els.resume.hidden = status !== 'PAUSED';
  els.resume.disabled = !view.live;
  els.end.hidden = !(status === 'ACTIVE' || status === 'PAUSED');
  els.end.disabled = !view.live;
  if (!view.ending) els.end.textContent = 'End interview';

  els.form.hidden = terminal;
  if (terminal) transcript.done();
  els.send.disabled = !canAnswer();
  els.mic.disabled = !micSupported() || (!recorder && !canAnswer());
  els.mic.textContent = recorder ? 'Stop and send' : 'Record answer';
  els.mic.setAttribute('aria-pressed', recorder ? 'true' : 'false');
  els.mic.classList.toggle('button--recording', Boolean(recorder));

  const q = view.question;
  els.question.hidden = !(view.questionOpen && q && !terminal);
  if (q) els.question.textContent = `${q.followUp ? 'Follow-up' : `Question ${q.order} of ${q.total}`}: ${q.text}`;
}

// ---------------------------------------------------------------------------
// Server events

client.on('state', (s) => {
  view.live = s.state === 'live';
  view.connection = s.state;
  if (!view.live) {
    // Audio recorded while the socket is down could never be sent.
    if (recorder) stopRecording(false);
    view.startPending = false;
    view.answerPending = false;
  }
  if (s.state === 'disconnected' && s.code === 4003) showFinishedRecord();
  render();
});

/**
 * A candidate coming back to a finished interview is refused at the socket
 * (4003); the record is still theirs to read over REST, so show it.
 */
async function showFinishedRecord() {
  const headers = { Authorization: `Bearer ${token}` };
  const base = `/v1/interviews/${encodeURIComponent(claims.interviewId)}`;
  try {
    const [row, log] = await Promise.all([
      fetch(base, { headers }).then((r) => (r.ok ? r.json() : null)),
      fetch(`${base}/transcript`, { headers }).then((r) => (r.ok ? r.json() : null)),
    ]);
    if (!row) return;
    view.status = row.status;
    view.progress = row.progress || view.progress;
    view.questionOpen = false;
    els.title.textContent = row.title || els.title.textContent;
    if (log && Array.isArray(log.entries)) transcript.reset(log.entries);
    if (row.summary) renderSummary(els.summary, row.summary);
    render();
  } catch {
    /* the banner already says the interview is closed */
  }
}

client.on('snapshot', (s) => {
  view.status = s.status;
  view.progress = s.progress;
  view.question = s.currentQuestion;
  const last = s.transcript[s.transcript.length - 1];
  // The snapshot does not say whether the current question was answered; an
  // answer is always the latest line until the interviewer speaks again.
  view.questionOpen = Boolean(s.currentQuestion) && (!last || last.speaker !== 'candidate') && !TERMINAL.has(s.status);
  transcript.reset(s.transcript);
  if (s.interview) {
    els.title.textContent = s.interview.title || 'Interview';
    els.subtitle.textContent = s.interview.candidateName ? `Welcome, ${s.interview.candidateName}` : '';
    document.title = `${s.interview.title || 'Interview'} · interviewd`;
  }
  render();
});

client.on('interview-started', () => {
  view.status = 'ACTIVE';
  view.startPending = false;
  render();
});

client.on('ai-thinking', () => {
  transcript.setThinking(true);
});
client.on('ai-stream-start', (d) => transcript.streamStart(d.messageId));
client.on('ai-token', (d) => transcript.token(d.messageId, d.text));
client.on('ai-stream-end', (d, frame) => {
  transcript.streamEnd(d.messageId, d.text, d.interrupted, frame.seq);
});

client.on('question', (d) => {
  // Start has just disappeared under the keyboard user's focus: take them
  // to where the answer goes.
  if (focusAnswerNext) els.answer.focus();
  focusAnswerNext = false;
  view.question = d;
  view.questionOpen = true;
  view.progress = { ...(view.progress || {}), currentQuestion: d.order, totalQuestions: d.total };
  render();
});

client.on('candidate-answer', (d, frame) => {
  transcript.answer(d.text, frame.seq);
  if (view.answerPending) els.answer.value = '';
  view.answerPending = false;
  view.questionOpen = false;
  render();
});

client.on('progress-update', (d) => {
  view.progress = d.progress;
  render();
});

client.on('interview-paused', (d) => {
  view.status = 'PAUSED';
  view.pauseReason = d.reason;
  transcript.setThinking(false);
  if (recorder) stopRecording(false);
  render();
});

client.on('interview-resumed', () => {
  view.status = 'ACTIVE';
  view.pauseReason = null;
  render();
});

client.on('interview-completed', (d) => {
  view.status = 'COMPLETED';
  view.questionOpen = false;
  transcript.setThinking(false);
  if (recorder) stopRecording(false);
  renderSummary(els.summary, d.summary);
  render();
});

client.on('interview-expired', () => {
  view.status = 'EXPIRED';
  view.questionOpen = false;
  render();
});

client.on('error', (d, frame) => {
  if (frame.ref && frame.ref === answerRef) view.answerPending = false;
  if (frame.ref === 'start') view.startPending = false;
  let message = d.message || d.code || 'Something went wrong.';
  if (d.code === 'INVALID_MESSAGE' && /transcri/i.test(message)) {
    // Also sent later, without our ref, when transcribing the audio failed.
    view.answerPending = false;
    message = 'Speech-to-text is not available: type your answer in the box and press Send.';
  }
  flash(els.error, message);
  render();
});

// ---------------------------------------------------------------------------
// Controls

function sendOrWarn(type, data, ref) {
  const sent = client.send(type, data, ref);
  if (!sent) flash(els.error, 'Not connected: wait for the connection to come back and try again.');
  return sent;
}

let focusAnswerNext = false;
els.start.addEventListener('click', () => {
  focusAnswerNext = document.activeElement === els.start;
  if (sendOrWarn('start-interview', {}, 'start')) view.startPending = true;
  render();
});
els.pause.addEventListener('click', () => sendOrWarn('pause-interview'));
els.resume.addEventListener('click', () => sendOrWarn('resume-interview'));

/** Ending is final, so it takes a second click within a few seconds. */
let endTimer = null;
els.end.addEventListener('click', () => {
  if (!view.ending) {
    view.ending = true;
    els.end.textContent = 'Click again to end';
    endTimer = setTimeout(() => {
      view.ending = false;
      render();
    }, 4000);
    return;
  }
  clearTimeout(endTimer);
  view.ending = false;
  sendOrWarn('end-interview');
  render();
});

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!canAnswer()) return;
  const text = els.answer.value.trim();
  if (!text) {
    flash(els.error, 'Type your answer first.');
    els.answer.focus();
    return;
  }
  answerRef = `answer-${++refCounter}`;
  if (sendOrWarn('answer', { text }, answerRef)) view.answerPending = true;
  render();
});

// Ctrl+Enter (Cmd+Enter) sends, as in most chat boxes.
els.answer.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    els.form.requestSubmit();
  }
});

// ---------------------------------------------------------------------------
// Microphone: MediaRecorder chunks go out as binary frames as they come;
// stopping sends `response-complete` with the typed text as transcription,
// because the server may have no speech-to-text.

function micSupported() {
  return typeof MediaRecorder !== 'undefined' && Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

async function startRecording() {
  try {
    micStream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    flash(els.error, `The microphone is not available (${err.name}). You can type your answer instead.`);
    return;
  }
  if (!canAnswer()) {
    micStream.getTracks().forEach((t) => t.stop());
    micStream = null;
    return;
  }
  const rec = new MediaRecorder(micStream);
  rec.finish = false;
  rec.ondataavailable = (event) => {
    if (!event.data || !event.data.size) return;
    sendChain = sendChain.then(() => event.data.arrayBuffer()).then((bytes) => client.sendBinary(bytes));
  };
  rec.onstop = () => {
    if (micStream) micStream.getTracks().forEach((t) => t.stop());
    micStream = null;
    const finish = rec.finish;
    sendChain = sendChain.then(() => {
      if (!finish) return;
      const transcription = els.answer.value.trim();
      answerRef = `answer-${++refCounter}`;
      if (client.send('response-complete', { transcription }, answerRef)) view.answerPending = true;
      render();
    });
  };
  recorder = rec;
  rec.start(AUDIO_TIMESLICE_MS);
  els.micStatus.textContent = 'Recording… Press “Stop and send” when you are done.';
  render();
}

function stopRecording(finish) {
  const rec = recorder;
  recorder = null;
  if (!rec) return;
  rec.finish = finish;
  if (rec.state !== 'inactive') rec.stop();
  els.micStatus.textContent = finish ? 'Sending your answer…' : 'Recording stopped.';
  render();
}

els.mic.addEventListener('click', () => {
  if (recorder) stopRecording(true);
  else startRecording();
});

// ---------------------------------------------------------------------------
// Proctoring, reported to the recruiter (the page says so). Leaving the tab
// is reported when the candidate comes back, with how long they were away:
// a reload or a closed tab is then never mistaken for a tab switch.

let hiddenSince = null;
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') {
    hiddenSince = Date.now();
    return;
  }
  if (hiddenSince !== null && view.status === 'ACTIVE') {
    const seconds = Math.round((Date.now() - hiddenSince) / 1000);
    client.send('proctor-event', {
      type: 'tab-switch',
      severity: seconds > 30 ? 'high' : 'medium',
      message: `The candidate left the interview tab for ${seconds} s.`,
    });
  }
  hiddenSince = null;
});

els.answer.addEventListener('paste', () => {
  if (view.status === 'ACTIVE') {
    client.send('proctor-event', {
      type: 'copy-paste',
      severity: 'low',
      message: 'The candidate pasted text into the answer box.',
    });
  }
});

render();
client.connect();
