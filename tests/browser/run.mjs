// Browser tests for interviewd's pages: the real server binary, Debian's
// Chromium driven by playwright-core, and the pages as a person uses them.
//
//   INTERVIEWD_BIN=target/debug/interviewd node tests/browser/run.mjs
//
// Environment: INTERVIEWD_BIN (the server binary; tests/browser.rs passes
// cargo's), CHROMIUM_PATH (default /usr/bin/chromium), SCREENSHOT_DIR
// (default: a new temp dir; the path is printed), KEEP_PROFILE=1 to keep the
// browser profile, INTERVIEWD_WEB_DIR=web to serve the pages from disk
// instead of the copies built into the binary (for working on them).
//
// What it checks:
// (a) an interview runs to completion through the candidate's room (Start,
//     typed answers, a short answer's follow-up, Pause and Resume, one answer
//     recorded through the microphone button with Chromium's fake audio
//     device) while the recruiter's view in the same browser shows the same
//     transcript, the scores, a proctoring alert, the trust score and the
//     candidate's comings and goings, and both show the summary at the end;
//     the operator's page lists the live session. A second interview is
//     ended early from the room (End, twice).
// (b) dropping the candidate's connection shows the reconnect banner, and
//     after it comes back the transcript is exactly the server's
//     (GET /v1/interviews/{id}/transcript): no line twice, none missing.
//     The drops: cutting the TCP connection in a proxy that the candidate's
//     page goes through, while the interviewer speaks (the browser sees
//     1006); the client's test hook `window.__interviewClient.dropForTest()`
//     (a Close 4000 from the page); the proxy refusing connections, so the
//     room tries 5 times (1, 2, 4, 8, 16 s apart), says "Disconnected" and
//     comes back through its Reconnect button; and reloads (resume from the
//     lastSeq in sessionStorage; then a lastSeq the server never reached, so
//     `recovered: false` and a rebuild from the snapshot).
// (c) the recruiter's page opened on a finished 50-question interview (over
//     a thousand events, more than a socket's outbox holds) replays the
//     whole log on one connection: 50 answers with their scores, the
//     summary, "Completed", no reconnect and no "Disconnected" (before the
//     paced replay the server closed it with 4008 part-way, and the page
//     went through its reconnect loop).
// Also: a link after the end (4003: the record over REST), an expired token
// (4001: no retry), no token at all. Every page must fit a 375 px wide
// screen and log no console error.
// Exits non-zero with a message naming the failed step.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BIN = process.env.INTERVIEWD_BIN || path.join(ROOT, 'target', 'debug', 'interviewd');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SECRET = `browser-test-secret-${randomBytes(16).toString('hex')}`;
const ADMIN_TOKEN = `browser-test-admin-${randomBytes(12).toString('hex')}`;
const ORG = 'org-1';
/** Bound for one expected change on a page. */
const STEP_MS = 15000;
/** Bound for the whole run; tests/browser.rs allows a little more. */
const WATCHDOG_MS = 4 * 60 * 1000;

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // A fake microphone (a beep) that needs no permission prompt, for the
  // recorded answer.
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

/** Server settings that a developer's environment must not leak into the run. */
const SERVER_VARS = [
  'BIND', 'PORT', 'DATABASE_URL', 'REDIS_URL', 'NODE_ID', 'JWT_SECRET', 'JWT_ISSUER', 'JWT_AUDIENCE',
  'LLM_BASE_URL', 'LLM_API_KEY', 'LLM_MODEL', 'LLM_TIMEOUT_MS', 'STT_BASE_URL', 'STT_API_KEY', 'STT_MODEL',
  'TTS_BASE_URL', 'TTS_API_KEY', 'TTS_MODEL', 'TTS_VOICE', 'HEARTBEAT_INTERVAL_MS', 'SESSION_IDLE_PASSIVATE_MS',
  'SESSION_TTL_SECS', 'MAX_FRAME_BYTES', 'RATE_LIMIT_PER_SEC', 'RATE_LIMIT_BURST', 'ADMIN_TOKEN', 'LOG_FORMAT',
  'SCRIPTED_WORD_DELAY_MS', 'MAX_AUDIO_BYTES', 'OUTBOX_FRAMES', 'MAX_SOCKETS_PER_TOKEN', 'MAX_SOCKETS_PER_ADDRESS', 'MAX_SOCKETS', 'PUBLIC_URL', 'DB_OUTAGE_PAUSE_MS',
  'PROCTOR_EVENTS_PER_MIN', 'PROCTOR_EVENTS_BURST', 'MAX_INTERVIEW_EVENTS', 'MAX_INTERVIEW_BYTES',
  'LLM_HISTORY_BUDGET_CHARS', 'TTS_DIR', 'DRAIN_TIMEOUT_MS', 'RUST_LOG',
];

// Over 12 words each (no follow-up), with the question's key terms and
// concrete details, so the heuristic scorer has something to like.
const LONG_1 =
  'I would rate-limit the public API with a token bucket per client in Redis, because it allows short bursts; for example 100 requests per minute, and I measured the latency it adds.';
// Under 12 words: the interviewer asks one follow-up.
const SHORT = 'I would add a cache.';
const LONG_2 =
  'For example, on a slow endpoint I measured the latency first, then added a read-through cache keyed by user id, which reduced p95 from 900 ms to 120 ms.';
const LONG_3 =
  'During an incident I led the response: I rolled back the deploy, then I wrote a blameless postmortem because the alert fired late, and we reduced detection time by 40 percent.';

// ---------------------------------------------------------------------------
// Small utilities

const started = Date.now();
function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${t}s]`, ...args);
}

class TestFailure extends Error {}

function check(condition, message) {
  if (!condition) throw new TestFailure(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

/** An HS256 JWT, as the server expects (PROTOCOL section 1). */
function mint(claims, ttlSecs = 3600) {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ ...claims, exp: Math.floor(Date.now() / 1000) + ttlSecs }));
  const signature = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

// ---------------------------------------------------------------------------
// The server

/**
 * Starts `interviewd serve` on port 0 with its own SQLite file (`dbName` in
 * `tmp`); `overrides` replace or add settings.
 */
async function startServer(tmp, overrides = {}, dbName = 'interviewd.db') {
  const env = { ...process.env };
  for (const name of SERVER_VARS) delete env[name];
  Object.assign(env, {
    BIND: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: `sqlite://${path.join(tmp, dbName)}`,
    JWT_SECRET: SECRET,
    ADMIN_TOKEN,
    // Slow enough that a drop can land while the interviewer is speaking.
    SCRIPTED_WORD_DELAY_MS: '30',
    // Short, so the page's application heartbeat runs several times.
    HEARTBEAT_INTERVAL_MS: '2000',
    LOG_FORMAT: 'pretty',
    RUST_BACKTRACE: '1',
    ...overrides,
  });
  check(fs.existsSync(BIN), `the server binary ${BIN} does not exist (set INTERVIEWD_BIN)`);
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const keep = (stream, name) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop();
      for (const line of parts) {
        lines.push(`${name}: ${line}`);
        if (lines.length > 2000) lines.shift();
      }
    });
  };
  keep(child.stdout, 'stdout');
  keep(child.stderr, 'stderr');
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new TestFailure('the server did not print `listening on` within 30 s')), 30000);
    const onData = (chunk) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(lines.join('\n') + chunk);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new TestFailure(`the server exited early (code ${code}, signal ${signal})`));
    });
  });
  return {
    port,
    lines,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const exited = await Promise.race([new Promise((r) => child.once('exit', () => r(true))), sleep(5000).then(() => false)]);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/**
 * A TCP proxy in front of the server for the candidate's page, so a test
 * can cut its connections the way a network failure would: a reset, no
 * WebSocket Close. The browser sees 1006; the server sees the socket die.
 */
async function startProxy(targetPort) {
  const pairs = new Set();
  const server = net.createServer((downstream) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { downstream, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    /** Stops accepting connections (and cuts the open ones): the server looks down. */
    async down() {
      await new Promise((resolve) => {
        server.close(resolve);
        this.cut();
      });
    },
    /** Accepts connections again, on the same port. */
    up: () => new Promise((resolve) => server.listen(port, '127.0.0.1', resolve)),
    cut() {
      const n = pairs.size;
      for (const { downstream, upstream } of [...pairs]) {
        downstream.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      return n;
    },
    close: () => new Promise((resolve) => (server.listening ? server.close(resolve) : resolve())),
  };
}

async function api(base, method, urlPath, token, body) {
  const res = await fetch(base + urlPath, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, json, text };
}

// ---------------------------------------------------------------------------
// Page helpers

/** Every console error and uncaught exception of every page, to fail on. */
const consoleErrors = [];
/** The running servers, for the watchdog and signal handlers. */
const liveServers = [];

/** Console errors expected for a while, e.g. refused connections while the server is away. */
let expectedConsoleErrors = null;

function watch(page, name) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (expectedConsoleErrors && expectedConsoleErrors.test(msg.text())) return;
    consoleErrors.push(`${name}: console.error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${name}: uncaught: ${err.message}`));
  return page;
}

async function waitUntil(page, what, fn, arg, timeout = STEP_MS) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (err) {
    const state = await describe(page).catch(() => '(page state unavailable)');
    throw new TestFailure(`timed out after ${timeout} ms waiting for: ${what}\n${state}`);
  }
}

/** What a page shows, for failure messages. */
async function describe(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id)?.textContent?.trim() ?? '(none)';
    const lines = [...document.querySelectorAll('#transcript .line')].map(
      (li) => `  ${li.dataset.seq ?? '…'} ${li.dataset.speaker}: ${li.querySelector('.line__text').textContent.slice(0, 70)}`,
    );
    return [
      `  url: ${location.pathname}`,
      `  client state: ${window.__interviewClient?.state} lastSeq: ${window.__interviewClient?.lastSeq}`,
      `  banner: ${text('banner') || '(empty)'} | status: ${text('status')} | progress: ${text('progress-label')}`,
      `  error: ${text('error')}`,
      `  transcript (${lines.length} lines):`,
      ...lines,
    ].join('\n');
  });
}

/** The page's finished transcript lines: `{seq, speaker, text}`. */
function pageTranscript(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#transcript .line:not(.line--streaming)')].map((li) => ({
      seq: Number(li.dataset.seq),
      speaker: li.dataset.speaker,
      text: li.querySelector('.line__text').textContent,
    })),
  );
}

/** The page's transcript must be the server's: same lines, same order, once each. */
async function expectTranscriptMatches(page, label, base, id, token) {
  const res = await api(base, 'GET', `/v1/interviews/${id}/transcript`, token);
  check(res.status === 200, `GET transcript: ${res.status} ${res.text}`);
  const want = res.json.entries.map((e) => ({ seq: e.seq, speaker: e.speaker, text: e.text }));
  const got = await pageTranscript(page);
  const key = (l) => `${l.seq}|${l.speaker}|${l.text}`;
  const seen = new Set();
  const duplicated = got.filter((l) => (seen.has(key(l)) ? true : (seen.add(key(l)), false)));
  const gotKeys = new Set(got.map(key));
  const wantKeys = new Set(want.map(key));
  const missing = want.filter((l) => !gotKeys.has(key(l)));
  const extra = got.filter((l) => !wantKeys.has(key(l)));
  const same = got.length === want.length && got.every((l, i) => key(l) === key(want[i]));
  if (!same) {
    const show = (ls) => ls.map((l) => `    ${l.seq} ${l.speaker}: ${l.text.slice(0, 80)}`).join('\n') || '    (none)';
    throw new TestFailure(
      `${label}: the page's transcript is not the server's\n` +
        `  duplicated on the page:\n${show(duplicated)}\n  missing from the page:\n${show(missing)}\n` +
        `  on the page only:\n${show(extra)}\n  page (${got.length}):\n${show(got)}\n  server (${want.length}):\n${show(want)}`,
    );
  }
  log(`  ${label}: transcript matches the server's (${got.length} lines)`);
  return got;
}

/** Records every text a page element shows over time (e.g. the banner). */
async function recordTexts(page, id, key) {
  await page.evaluate(
    ([id, key]) => {
      const el = document.getElementById(id);
      const seen = (window[key] = [el.textContent.trim()]);
      new MutationObserver(() => {
        const t = el.textContent.trim();
        if (seen[seen.length - 1] !== t) seen.push(t);
      }).observe(el, { childList: true, subtree: true, characterData: true });
    },
    [id, key],
  );
}

const recorded = (page, key) => page.evaluate((key) => window[key], key);

async function expectNoHorizontalScroll(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  check(scrollWidth <= innerWidth, `${label}: the page scrolls sideways at ${innerWidth} px (content is ${scrollWidth} px wide)`);
}

/** The candidate's page: waits until a question awaits an answer. */
async function waitForQuestion(page, answered, what) {
  await waitUntil(
    page,
    what,
    (answered) =>
      window.__interviewClient?.state === 'live' &&
      !document.getElementById('send').disabled &&
      document.querySelectorAll('#transcript .line--candidate').length === answered,
    answered,
  );
}

async function typeAndSend(page, text, answeredBefore) {
  await page.fill('#answer', text);
  await page.click('#send');
  await waitUntil(
    page,
    `answer ${answeredBefore + 1} on the candidate's transcript`,
    (n) => document.querySelectorAll('#transcript .line--candidate').length === n,
    answeredBefore + 1,
  );
}

/**
 * Plays the candidate over a bare WebSocket, from a blank page of the
 * browser (Node 20 has no WebSocket of its own): join, start, then `answer`
 * to every question until `interview-completed`. Resolves with the number
 * of answers sent; rejects on an error frame or an early close.
 */
async function answerEverything(context, wsUrl, interviewId, answer) {
  const page = await context.newPage();
  try {
    return await page.evaluate(
      ([url, interviewId, answer, timeoutMs]) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url);
          const send = (type, data) => ws.send(JSON.stringify({ type, data }));
          const timer = setTimeout(() => reject(new Error(`not completed within ${timeoutMs} ms`)), timeoutMs);
          let answers = 0;
          ws.onmessage = (event) => {
            const frame = JSON.parse(event.data);
            if (frame.type === 'connected') send('join-interview', { interviewId });
            else if (frame.type === 'interview-ready') send('start-interview', {});
            else if (frame.type === 'question') {
              answers += 1;
              send('answer', { text: answer });
            } else if (frame.type === 'interview-completed') {
              clearTimeout(timer);
              resolve(answers);
            } else if (frame.type === 'error') reject(new Error(`error ${frame.data.code}: ${frame.data.message}`));
          };
          ws.onclose = (event) => reject(new Error(`the candidate's socket closed with ${event.code} before the end`));
        }),
      [wsUrl, interviewId, answer, 60000],
    );
  } finally {
    await page.close();
  }
}

/** Polls `GET /v1/interviews/{id}` until its status is `status` (the row is written in batches). */
async function waitForRow(base, id, token, status) {
  const deadline = Date.now() + STEP_MS;
  for (;;) {
    const row = await api(base, 'GET', `/v1/interviews/${id}`, token);
    check(row.status === 200, `GET /v1/interviews/${id}: ${row.status} ${row.text}`);
    if (row.json.status === status) return row.json;
    check(Date.now() < deadline, `the interview row says ${row.json.status}, want ${status}`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------
// The run

async function checkAssets(base) {
  const expected = {
    '/room': 'text/html',
    '/observe': 'text/html',
    '/ops': 'text/html',
    '/web/client.js': 'text/javascript',
    '/web/room.js': 'text/javascript',
    '/web/style.css': 'text/css',
  };
  for (const [p, type] of Object.entries(expected)) {
    const res = await fetch(base + p);
    check(res.status === 200, `GET ${p}: ${res.status}`);
    check((res.headers.get('content-type') || '').startsWith(type), `GET ${p}: content-type ${res.headers.get('content-type')}`);
    check(res.headers.get('cache-control') === 'no-cache', `GET ${p}: cache-control ${res.headers.get('cache-control')}`);
  }
  const missing = await fetch(`${base}/web/nope.js`);
  check(missing.status === 404, `GET /web/nope.js: ${missing.status}, want 404`);
  log('  pages and assets are served with their content types and no-cache');
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'interviewd-browser-'));
  const shots = process.env.SCREENSHOT_DIR || path.join(tmp, 'screenshots');
  fs.mkdirSync(shots, { recursive: true });
  const profile = path.join(tmp, 'profile');
  fs.mkdirSync(profile);

  let server = null;
  let longServer = null;
  let proxy = null;
  let context = null;
  const pages = {};
  try {
    log(`server: ${BIN}`);
    server = await startServer(tmp);
    liveServers.push(server);
    proxy = await startProxy(server.port);
    const base = `http://127.0.0.1:${server.port}`;
    // The candidate's page goes through the proxy, whose connections the
    // test cuts; the recruiter's and the operator's go straight to the server.
    const candidateBase = `http://127.0.0.1:${proxy.port}`;
    log(`server on ${base}, candidate proxy on ${candidateBase}`);

    await checkAssets(base);

    const recruiter = mint({ sub: 'r-1', role: 'recruiter', orgId: ORG, name: 'Rita Recruiter' });
    const admin = mint({ sub: 'a-1', role: 'admin', name: 'Olga Operator' });
    const created = await api(base, 'POST', '/v1/interviews', recruiter, {
      candidateName: 'Ada Lovelace',
      title: 'Backend engineer',
      durationMinutes: 30,
      questions: [
        { text: 'How would you rate-limit a public API?', type: 'TECHNICAL' },
        { text: 'How would you make a slow endpoint fast?', type: 'TECHNICAL' },
        { text: 'Tell me about an incident you handled.', type: 'BEHAVIORAL' },
      ],
    });
    check(created.status === 201, `POST /v1/interviews: ${created.status} ${created.text}`);
    const { id, joinToken } = created.json;
    log(`interview ${id}`);

    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });

    // --- the recruiter watches first, the candidate joins -------------------
    const R = (pages.recruiter = watch(await context.newPage(), 'observe'));
    await R.goto(`${base}/observe?interview=${id}&token=${recruiter}`);
    await waitUntil(R, 'the recruiter view to be live', () => window.__interviewClient?.state === 'live');
    await recordTexts(R, 'candidate-state', '__candidateStates');
    await recordTexts(R, 'status', '__statuses');

    const C = (pages.candidate = watch(await context.newPage(), 'room'));
    await C.setViewportSize({ width: 375, height: 812 });
    await C.goto(`${candidateBase}/room?token=${joinToken}`);
    await recordTexts(C, 'banner', '__banners');
    await waitUntil(C, 'the candidate room to be live', () => window.__interviewClient?.state === 'live');
    await waitUntil(C, 'the connection banner to be hidden', () => document.getElementById('banner').textContent.trim() === '');
    check((await C.textContent('#title')) === 'Backend engineer', 'the room shows the interview title');
    await waitUntil(C, 'the Start button', () => !document.getElementById('start').hidden && !document.getElementById('start').disabled);
    check(await C.isDisabled('#send'), 'Send is disabled before any question');
    await waitUntil(R, "the recruiter to see the candidate connected", () => document.getElementById('candidate-state').textContent === 'Connected');
    await expectNoHorizontalScroll(C, 'room before start');

    // Watch for the thinking line and the streaming cursor ever appearing.
    await C.evaluate(() => {
      const seen = (window.__seen = { thinking: false, cursor: false });
      new MutationObserver(() => {
        if (!document.getElementById('thinking').hidden) seen.thinking = true;
        if (document.querySelector('#transcript .line--streaming .cursor')) seen.cursor = true;
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });

    // --- (a) the interview, answer by answer --------------------------------
    log('(a) start the interview');
    await C.click('#start');
    await waitForQuestion(C, 0, 'the first question');
    check(await C.isHidden('#start'), 'Start is hidden once the interview runs');
    check((await C.textContent('#progress-label')) === 'Question 1 of 3', `progress reads ${await C.textContent('#progress-label')}`);
    const seen = await C.evaluate(() => window.__seen);
    check(seen.thinking, 'the room never showed "The interviewer is thinking…"');
    check(seen.cursor, 'the room never showed the streaming cursor');
    check((await C.$$('.cursor')).length === 0, 'a streaming cursor stays after the message ended');

    // Pasting into the answer box is reported to the recruiter.
    await C.dispatchEvent('#answer', 'paste');
    await waitUntil(R, 'a proctoring alert on the recruiter view', () => document.querySelectorAll('#alerts .alert').length >= 1);
    await waitUntil(R, 'the trust score to drop', () => Number(document.getElementById('trust-score').textContent) < 100);

    log('(a) answer 1 (long)');
    await typeAndSend(C, LONG_1, 0);
    await waitForQuestion(C, 1, 'question 2');
    check((await C.inputValue('#answer')) === '', 'the answer box is cleared once the answer is taken');
    await waitUntil(R, 'a score for answer 1', () => document.querySelectorAll('#transcript .evaluation').length === 1);

    // The operator's view, while the session is live.
    const O = (pages.ops = watch(await context.newPage(), 'ops'));
    await O.goto(`${base}/ops?token=${ADMIN_TOKEN}`);
    await waitUntil(O, 'the live session in the operator table', (id) => Boolean(document.querySelector(`tr[data-interview-id="${id}"]`)), id);
    const row = await O.evaluate((id) => {
      const tr = document.querySelector(`tr[data-interview-id="${id}"]`);
      return Object.fromEntries([...tr.cells].map((td) => [td.dataset.label, td.textContent.trim()]));
    }, id);
    check(row.State === 'active', `ops: state ${row.State}`);
    check(row.Candidate === 'Yes', `ops: candidate ${row.Candidate}`);
    check(Number(row.Observers) >= 1, `ops: observers ${row.Observers}`);
    check(Number(row['Last seq']) > 0, `ops: last seq ${row['Last seq']}`);
    check(Number(await O.textContent('#stat-connected')) >= 2, 'ops: sockets connected');
    check(Number(await O.textContent('#stat-sessions')) >= 1, 'ops: live sessions');
    const updated1 = await O.textContent('#updated');
    await waitUntil(O, 'the operator table to refresh', (t) => document.getElementById('updated').textContent !== t, updated1, 6000);
    await O.screenshot({ path: path.join(shots, 'ops-live.png'), fullPage: true });

    log('(a) answer 2 (short): a follow-up');
    await typeAndSend(C, SHORT, 1);
    await waitForQuestion(C, 2, 'the follow-up question');
    check((await C.textContent('#current-question')).startsWith('Follow-up'), `the current question reads ${await C.textContent('#current-question')}`);

    // --- (b) drop 1: cut the network while the interviewer speaks -----------
    log('(b) answer the follow-up, then cut the network mid-stream');
    await C.fill('#answer', LONG_2);
    await C.click('#send');
    await waitUntil(C, 'the interviewer to start speaking', () => Boolean(document.querySelector('#transcript .line--streaming')));
    const cut = proxy.cut();
    log(`  cut ${cut} connection(s)`);
    await waitUntil(C, 'the reconnect banner', () => /Reconnecting… attempt 1 of 5/.test(document.getElementById('banner').textContent));
    await waitUntil(C, 'the room to be live again', () => window.__interviewClient?.state === 'live', undefined, 20000);
    await waitForQuestion(C, 3, 'question 3 after the reconnect');
    await waitUntil(C, 'the banner to hide', () => document.getElementById('banner').textContent.trim() === '');
    await expectTranscriptMatches(C, 'room after a network cut', base, id, recruiter);
    const interrupted = await C.$$('#transcript .line__note');
    log(`  the cut ${interrupted.length ? 'interrupted the interviewer' : 'landed between messages'}`);
    await waitUntil(R, 'the recruiter to see the candidate back', () => document.getElementById('candidate-state').textContent === 'Connected');
    const candidateStates = await recorded(R, '__candidateStates');
    check(candidateStates.includes('Disconnected'), `the recruiter never saw the candidate disconnected: ${candidateStates.join(' → ')}`);
    const statuses = await recorded(R, '__statuses');
    check(statuses.some((s) => /Paused: the candidate disconnected/.test(s)), `the recruiter never saw the pause: ${statuses.join(' → ')}`);

    // --- (b) drop 2: the client's test hook, while a question waits ---------
    log('(b) drop through the test hook while a question waits');
    await C.evaluate(() => window.__interviewClient.dropForTest());
    await waitUntil(
      C,
      'the reconnect banner (hook), with Send disabled',
      () => /Reconnecting… attempt 1 of 5/.test(document.getElementById('banner').textContent) && document.getElementById('send').disabled,
    );
    // Best effort: the client may be back before the picture is taken.
    await C.screenshot({ path: path.join(shots, 'room-reconnecting-375.png') });
    await waitForQuestion(C, 3, 'question 3 to be answerable again');
    await expectTranscriptMatches(C, 'room after the test hook drop', base, id, recruiter);

    // --- (b) the server stays away: 5 tries, then "Disconnected" ------------
    log('(b) the server is unreachable: five tries with backoff, then Disconnected and a Reconnect button');
    expectedConsoleErrors = /WebSocket connection to .* failed/;
    const connectsBefore = await C.evaluate(() => window.__interviewClient.stats.connects);
    const downAt = Date.now();
    await proxy.down();
    await waitUntil(
      C,
      'the Disconnected banner after five failed tries',
      () => /^Disconnected/.test(document.getElementById('banner').textContent),
      undefined,
      45000,
    );
    const waited = Date.now() - downAt;
    const tries = (await C.evaluate(() => window.__interviewClient.stats.connects)) - connectsBefore;
    check(tries === 5, `the client tried ${tries} times, want 5`);
    // 1+2+4+8+16 s, each ±20 %.
    check(waited >= 24000, `the client gave up after ${waited} ms: backoff too short`);
    log(`  gave up after ${tries} tries in ${(waited / 1000).toFixed(1)} s`);
    await C.screenshot({ path: path.join(shots, 'room-disconnected-375.png') });
    check(await C.isDisabled('#send'), 'Send is disabled while disconnected');
    await proxy.up();
    await C.click('#banner button');
    await waitForQuestion(C, 3, 'question 3 after Reconnect');
    expectedConsoleErrors = null;
    await expectTranscriptMatches(C, 'room after Reconnect', base, id, recruiter);

    const banners = await recorded(C, '__banners');
    log(`  banners the candidate saw: ${banners.map((b) => JSON.stringify(b)).join(' → ')}`);
    for (let n = 1; n <= 5; n += 1) {
      check(banners.includes(`Reconnecting… attempt ${n} of 5`), `the banner never read "Reconnecting… attempt ${n} of 5"`);
    }

    // --- (b) drop 3: reloads --------------------------------------------------
    log('(b) reload: resume from the lastSeq kept in sessionStorage');
    const storedBefore = await C.evaluate(() => window.__interviewClient.lastSeq);
    await C.reload();
    await waitForQuestion(C, 3, 'question 3 after a reload');
    const connects = await C.evaluate(() => window.__interviewClient.stats.connects);
    check(connects === 1, `after the reload the client connected ${connects} times`);
    await expectTranscriptMatches(C, 'room after a reload', base, id, recruiter);
    check((await C.evaluate(() => window.__interviewClient.lastSeq)) >= storedBefore, 'lastSeq went back after a reload');

    log('(b) reload with a lastSeq the server never reached: recovered:false, rebuilt from the snapshot');
    await C.evaluate((id) => sessionStorage.setItem(`interviewd:lastSeq:candidate:${id}`, '999999'), id);
    await C.reload();
    await waitForQuestion(C, 3, 'question 3 after a rebuild from the snapshot');
    await expectTranscriptMatches(C, 'room rebuilt from the snapshot', base, id, recruiter);
    const lastSeq = await C.evaluate(() => window.__interviewClient.lastSeq);
    check(lastSeq < 999999, `lastSeq stayed at ${lastSeq} after recovered:false`);

    log('(a) pause and resume from the room');
    await C.click('#pause');
    await waitUntil(C, 'the room to show Paused', () => document.getElementById('status').textContent === 'Paused' && !document.getElementById('resume').hidden);
    check(await C.isDisabled('#send'), 'Send is disabled while paused');
    await waitUntil(R, 'the recruiter to see the pause', () => document.getElementById('status').textContent === 'Paused: by the candidate');
    await C.click('#resume');
    await waitForQuestion(C, 3, 'question 3 after resuming');
    check((await C.textContent('#status')) === 'In progress', `the room status reads ${await C.textContent('#status')}`);
    log('  resumed');

    await C.screenshot({ path: path.join(shots, 'room-question-375.png'), fullPage: true });
    await R.screenshot({ path: path.join(shots, 'observe-live-1280.png'), fullPage: true });

    // --- (a) answer 3 through the microphone ---------------------------------
    log('(a) answer 3 through the microphone (fake device) and the typed transcription');
    await C.click('#mic');
    await waitUntil(C, 'recording to start', () => document.getElementById('mic').getAttribute('aria-pressed') === 'true');
    log('  recording');
    await C.fill('#answer', LONG_3);
    await sleep(1200);
    await C.click('#mic');
    log('  stopped');
    await waitUntil(C, 'the recorded answer on the transcript', () => document.querySelectorAll('#transcript .line--candidate').length === 4);
    const audioFrames = await C.evaluate(() => window.__interviewClient.stats.binaryFramesSent);
    check(audioFrames >= 3, `only ${audioFrames} audio frames were sent in 1.2 s of recording`);
    log(`  ${audioFrames} audio frames sent`);

    // --- the end ----------------------------------------------------------------
    await waitUntil(C, 'the summary in the room', () => !document.getElementById('summary').hidden, undefined, 20000);
    await waitUntil(R, 'the summary on the recruiter view', () => !document.getElementById('summary').hidden, undefined, 20000);
    check((await C.textContent('#summary h2')) === 'Interview complete', 'the room summary heading');
    check(/\d+ \/ 100/.test(await R.textContent('#summary .summary-score')), 'the recruiter summary shows an overall score');
    check((await C.textContent('#status')) === 'Completed', `the room status reads ${await C.textContent('#status')}`);
    check(await C.isHidden('#answer-form'), 'the answer box is hidden after the end');
    await waitUntil(C, 'the room client to end (1000)', () => window.__interviewClient.state === 'ended');
    await waitUntil(R, 'the recruiter client to end (1000)', () => window.__interviewClient.state === 'ended');
    check((await C.textContent('#banner')).trim() === '', 'the banner stays hidden after a normal end');

    const row2 = await api(base, 'GET', `/v1/interviews/${id}`, recruiter);
    check(row2.json.status === 'COMPLETED', `the interview row says ${row2.json.status}`);
    const roomLines = await expectTranscriptMatches(C, 'room at the end', base, id, recruiter);
    await expectTranscriptMatches(R, 'recruiter view at the end', base, id, recruiter);
    const answers = roomLines.filter((l) => l.speaker === 'candidate').length;
    const evaluations = await R.$$eval('#transcript .evaluation', (els) => els.length);
    const scores = await R.$$eval('#scores li', (els) => els.length);
    check(evaluations === answers && scores === answers, `${answers} answers but ${evaluations} evaluations and ${scores} scores shown`);
    check((await R.textContent('#average-score')) !== '—', 'the recruiter view shows an average score');
    check(Number(await R.textContent('#trust-score')) === row2.json.trustScore, `trust score ${await R.textContent('#trust-score')} vs the row's ${row2.json.trustScore}`);

    // --- screenshots, and every page at 375 px ----------------------------------
    log('screenshots');
    await C.screenshot({ path: path.join(shots, 'room-375.png'), fullPage: true });
    await R.screenshot({ path: path.join(shots, 'observe-1280.png'), fullPage: true });
    await O.reload();
    await waitUntil(O, 'the operator page to load', () => /Updated/.test(document.getElementById('updated').textContent));
    await O.screenshot({ path: path.join(shots, 'ops-1280.png'), fullPage: true });
    for (const [name, page] of [['observe', R], ['ops', O]]) {
      await page.setViewportSize({ width: 375, height: 812 });
      await sleep(100);
      await expectNoHorizontalScroll(page, name);
      await page.screenshot({ path: path.join(shots, `${name}-375.png`), fullPage: true });
    }
    await expectNoHorizontalScroll(C, 'room at the end');
    await C.setViewportSize({ width: 1280, height: 900 });
    await C.screenshot({ path: path.join(shots, 'room-1280.png'), fullPage: true });

    // The candidate's link after the end: refused at the socket (4003), the
    // room shows the record from the REST API instead.
    log('the room after the end');
    const after = watch(await context.newPage(), 'room-after-end');
    await after.goto(`${base}/room?token=${joinToken}`);
    await waitUntil(after, 'the summary of the finished interview', () => !document.getElementById('summary').hidden);
    check(/no longer open/.test(await after.textContent('#banner')), `the banner reads ${await after.textContent('#banner')}`);
    check((await after.textContent('#status')) === 'Completed', `the status reads ${await after.textContent('#status')}`);
    await expectTranscriptMatches(after, 'room opened after the end', base, id, recruiter);
    await after.close();

    // A bad token: the room says so and does not retry.
    log('an expired token');
    const bad = watch(await context.newPage(), 'room-bad-token');
    await bad.goto(`${base}/room?token=${mint({ sub: 'x', role: 'candidate', interviewId: id }, -60)}`);
    await waitUntil(bad, 'a final "Disconnected" banner for an expired token', () => /Disconnected: this link is invalid or has expired/.test(document.getElementById('banner').textContent));
    check((await bad.$$('#banner button')).length === 0, 'no Reconnect button after 4001');
    await bad.screenshot({ path: path.join(shots, 'room-expired-token-1280.png') });
    await sleep(1500);
    check((await bad.evaluate(() => window.__interviewClient.stats.connects)) === 1, 'the room retried after 4001');
    await bad.close();

    // Ending early from the room: two clicks, then a summary with nothing scored.
    log('a second interview, ended from the room before any answer');
    const second = await api(base, 'POST', '/v1/interviews', recruiter, {
      candidateName: 'Grace Hopper',
      title: 'Compiler engineer',
      questions: [{ text: 'What is a linker for?' }],
    });
    check(second.status === 201, `POST /v1/interviews: ${second.status} ${second.text}`);
    const early = watch(await context.newPage(), 'room-ended-early');
    await early.setViewportSize({ width: 375, height: 812 });
    await early.goto(`${base}/room?token=${second.json.joinToken}`);
    await waitUntil(early, 'the Start button', () => !document.getElementById('start').hidden && !document.getElementById('start').disabled);
    await early.click('#start');
    await waitForQuestion(early, 0, 'the only question');
    await early.click('#end');
    check((await early.textContent('#end')) === 'Click again to end', 'End asks for a second click');
    await early.click('#end');
    await waitUntil(early, 'the summary after ending early', () => !document.getElementById('summary').hidden);
    check(/Not scored/.test(await early.textContent('#summary .summary-score')), 'an interview with nothing answered is not scored');
    await early.close();

    // No token at all: a plain explanation, no socket, no console error.
    const bare = watch(await context.newPage(), 'room-no-token');
    await bare.goto(`${base}/room`);
    await waitUntil(bare, 'the no-token message', () => /does not name an interview/.test(document.getElementById('error').textContent));
    check(await bare.evaluate(() => window.__interviewClient === undefined), 'a client was started without a token');
    await bare.close();

    // --- (c) a finished 50-question interview on the recruiter's page --------
    // A server of its own whose interviewer does not pause between words, so
    // 50 turns take seconds, not a minute.
    log('(c) a finished 50-question interview, opened on /observe');
    longServer = await startServer(tmp, { SCRIPTED_WORD_DELAY_MS: '0' }, 'interviewd.db-long');
    liveServers.push(longServer);
    const longBase = `http://127.0.0.1:${longServer.port}`;
    const questions = Array.from({ length: 50 }, (_, i) => ({
      text: `Question ${i + 1}: how would you design, build and run a service that does this well?`,
      type: 'TECHNICAL',
    }));
    const long = await api(longBase, 'POST', '/v1/interviews', recruiter, {
      candidateName: 'Katherine Johnson',
      title: 'Backend engineer',
      durationMinutes: 60,
      questions,
    });
    check(long.status === 201, `POST /v1/interviews (50 questions): ${long.status} ${long.text}`);
    const answered = await answerEverything(context, long.json.wsUrl, long.json.id, LONG_1);
    check(answered === 50, `the candidate answered ${answered} questions, want 50`);
    const longRow = await waitForRow(longBase, long.json.id, recruiter, 'COMPLETED');
    check(longRow.lastSeq > 1024, `a log of ${longRow.lastSeq} events is not longer than an outbox (1024 frames)`);
    log(`  completed: ${answered} answers, ${longRow.lastSeq} events`);

    const L = (pages.long = watch(await context.newPage(), 'observe-long'));
    // Every text the banner ever shows, from the first moment (the page's
    // own script may connect before any check here could start watching).
    await L.addInitScript(() => {
      window.__longBanners = [];
      document.addEventListener('DOMContentLoaded', () => {
        const el = document.getElementById('banner');
        const note = () => {
          const t = el.textContent.trim();
          if (window.__longBanners[window.__longBanners.length - 1] !== t) window.__longBanners.push(t);
        };
        note();
        new MutationObserver(note).observe(el, { childList: true, subtree: true, characterData: true });
      });
    });
    await L.goto(`${longBase}/observe?interview=${long.json.id}&token=${recruiter}`);
    await waitUntil(
      L,
      `the whole log (${longRow.lastSeq} events) on the page`,
      (head) => window.__interviewClient?.lastSeq === head || window.__interviewClient?.stats.connects > 1,
      longRow.lastSeq,
      30000,
    );
    const longStats = await L.evaluate(() => ({ ...window.__interviewClient.stats, state: window.__interviewClient.state }));
    const longBanners = await recorded(L, '__longBanners');
    log(`  the page read ${longStats.delivered} events on ${longStats.connects} connection(s); banners: ${longBanners.map((b) => JSON.stringify(b)).join(' → ')}`);
    check(longStats.connects === 1, `the page connected ${longStats.connects} times: the replay was cut (4008?) and it reconnected`);
    check(longStats.state === 'live', `the page's client is ${longStats.state}, want live`);
    check(longStats.delivered === longRow.lastSeq && longStats.duplicatesDropped === 0, `the page got ${longStats.delivered} events (${longStats.duplicatesDropped} duplicates) of ${longRow.lastSeq}`);
    check(!longBanners.some((b) => /Reconnecting|Disconnected/.test(b)), `the banner read: ${longBanners.join(' → ')}`);
    check((await L.textContent('#banner')).trim() === '', `the banner reads ${await L.textContent('#banner')}`);
    check((await L.textContent('#status')) === 'Completed', `the status reads ${await L.textContent('#status')}`);
    check((await L.textContent('#candidate-state')) === 'Interview over', `the candidate reads ${await L.textContent('#candidate-state')}`);
    const longAnswers = await L.$$eval('#transcript .line--candidate', (els) => els.length);
    const longEvaluations = await L.$$eval('#transcript .evaluation', (els) => els.length);
    const longScores = await L.$$eval('#scores li', (els) => els.length);
    check(longAnswers === 50 && longEvaluations === 50 && longScores === 50, `the page shows ${longAnswers} answers, ${longEvaluations} evaluations and ${longScores} scores, want 50 each`);
    check(!(await L.isHidden('#summary')), 'the summary is shown');
    check(/\d+ \/ 100/.test(await L.textContent('#summary .summary-score')), 'the summary shows an overall score');
    await expectTranscriptMatches(L, 'recruiter view of the finished 50-question interview', longBase, long.json.id, recruiter);
    await L.screenshot({ path: path.join(shots, 'observe-completed-50-1280.png') });
    await L.close();

    check(consoleErrors.length === 0, `console errors:\n  ${consoleErrors.join('\n  ')}`);
    log(`screenshots in ${shots}`);
    log('all browser checks passed');
  } catch (err) {
    console.error(`\nFAILED: ${err instanceof TestFailure ? err.message : err.stack || err}`);
    if (consoleErrors.length) console.error(`console errors:\n  ${consoleErrors.join('\n  ')}`);
    for (const [name, page] of Object.entries(pages)) {
      try {
        if (page.isClosed()) continue;
        await page.screenshot({ path: path.join(shots, `failed-${name}.png`), fullPage: true });
        console.error(`${name} page:\n${await describe(page)}`);
      } catch {
        /* the browser may be gone */
      }
    }
    if (server) console.error(`last server output:\n${server.lines.slice(-80).join('\n')}`);
    if (longServer) console.error(`last output of the long interview's server:\n${longServer.lines.slice(-80).join('\n')}`);
    console.error(`screenshots in ${shots}`);
    process.exitCode = 1;
  } finally {
    if (context) await context.close().catch(() => {});
    if (proxy) await proxy.close().catch(() => {});
    if (server) await server.stop();
    if (longServer) await longServer.stop();
    if (!process.env.KEEP_PROFILE) fs.rmSync(profile, { recursive: true, force: true });
    // Keep the screenshots, not the database.
    for (const name of fs.readdirSync(tmp)) {
      if (name.startsWith('interviewd.db')) fs.rmSync(path.join(tmp, name), { force: true });
    }
  }
}

/** Kills the server if the run is cut short (Playwright kills its own browser on exit). */
function killServerNow() {
  for (const s of liveServers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
}
process.on('exit', killServerNow);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.error(`FAILED: interrupted by ${signal}`);
    process.exit(1);
  });
}

const watchdog = setTimeout(() => {
  console.error(`FAILED: the browser tests did not finish within ${WATCHDOG_MS / 1000} s`);
  for (const s of liveServers) console.error(`last server output:\n${s.lines.slice(-80).join('\n')}`);
  process.exit(1);
}, WATCHDOG_MS);

await main();
clearTimeout(watchdog);
// Summary line in the plain form CI reads.
console.log(process.exitCode ? 'browser: 0 passed, 1 failed' : 'browser: 1 passed, 0 failed');
