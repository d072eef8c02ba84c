// interviewd browser client: one WebSocket to `/interview`, following
// PROTOCOL.md sections 1-6 and 8. Framework-free on purpose: the candidate
// room, the recruiter view and any page to come share this one file.
//
// What it guarantees to a page:
// - session events (frames with `seq`) are delivered exactly once and in
//   seq order, across drops and reconnects: anything at or below the last
//   seq processed is dropped, so a resumed page never shows a line twice;
// - when the server cannot replay what was missed (`recovered: false`), or
//   the page has nothing rendered yet, the page gets one `snapshot` to
//   rebuild its view from before any further event;
// - the connection state is always one of: connecting, live, reconnecting,
//   disconnected, ended, reported through `on('state', fn)`.

/** Reconnect delays before jitter (PROTOCOL section 6): 1, 2, 4, 8, 16 s. */
export const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000];
export const MAX_ATTEMPTS = BACKOFF_MS.length;

/**
 * Close codes after which retrying cannot help (PROTOCOL section 8): the
 * interview is over (1000), the token or the interview is wrong (4001-4004),
 * another tab took over (4005), or the server gave up on us (1008, 1009).
 */
export const FINAL_CLOSE_CODES = new Set([1000, 1008, 1009, 4001, 4002, 4003, 4004, 4005]);

/** A close code the client uses itself when it drops a socket on purpose. */
const CLIENT_DROP = 4000;

/** How long a new socket may take to say `connected` and answer the join. */
const JOIN_TIMEOUT_MS = 10000;

/** Replies to one client: never carry `seq` (PROTOCOL section 2). */
const JOIN_REPLIES = new Set(['interview-ready', 'observation-started']);

/** Decodes a JWT's payload without verifying it: the server verifies. */
export function decodeJwtClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** `ws://host/interview?token=…` for the page's own origin. */
export function socketUrl(token, loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/interview?token=${encodeURIComponent(token)}`;
}

export class InterviewClient {
  /**
   * @param {object} options
   * @param {string} options.token JWT sent as `?token=` (browsers cannot set headers on an upgrade).
   * @param {string} options.interviewId the interview to join or observe.
   * @param {'candidate'|'observer'} options.role candidates join, recruiters and admins observe.
   * @param {number|null} [options.initialLastSeq] where to resume from when the page loads;
   *   by default the value this tab stored in sessionStorage (a reload resumes), else none.
   * @param {string} [options.url] the socket URL; by default this origin's `/interview`.
   */
  constructor({ token, interviewId, role, initialLastSeq, url }) {
    this.token = token;
    this.interviewId = interviewId;
    this.role = role;
    this.url = url || socketUrl(token);
    this.storageKey = `interviewd:lastSeq:${role}:${interviewId}`;
    // Counters for tests and for anyone debugging from the console.
    this.stats = { delivered: 0, duplicatesDropped: 0, connects: 0, binaryFramesSent: 0 };

    this._handlers = new Map();
    this._ws = null;
    this._state = 'idle';
    this._attempt = 0;
    this._retryTimer = null;
    this._joinTimer = null;
    this._heartbeatTimer = null;
    this._lastHeard = 0;
    this._joined = false;
    this._userClosed = false;
    this._sentLastSeq = null;
    // Nothing is rendered when a page loads, so its first join reply is
    // always turned into a snapshot, whatever `recovered` says.
    this._needsSnapshot = true;
    this._lastSeq = initialLastSeq !== undefined ? initialLastSeq : this._readStoredSeq();

    // Coming back online is a better moment to retry than a timer.
    window.addEventListener('online', () => {
      if (this._state === 'reconnecting' && this._retryTimer) {
        clearTimeout(this._retryTimer);
        this._retryTimer = null;
        this._open();
      }
    });
  }

  /** The highest seq processed, or null before the first join. */
  get lastSeq() {
    return this._lastSeq;
  }

  get state() {
    return this._state;
  }

  /**
   * Subscribes to a frame type (`question`, `error`, …), or to `state`
   * (connection changes), `snapshot` (rebuild the view) or `*` (every
   * delivered frame). Returns a function that unsubscribes.
   */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this._handlers.get(type).delete(fn);
  }

  /** Opens the first connection. */
  connect() {
    this._userClosed = false;
    this._attempt = 0;
    this._setState('connecting', {});
    this._open();
  }

  /** A manual retry, e.g. from a "Reconnect" button after giving up. */
  reconnectNow() {
    if (this._state === 'live' || this._state === 'connecting') return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this.connect();
  }

  /**
   * Sends a command once the join has been answered. Returns false (and
   * sends nothing) otherwise: commands are not queued across a reconnect,
   * because an answer typed before a drop may no longer fit the interview.
   */
  send(type, data = {}, ref) {
    if (!this._joined || !this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    const frame = { type, data };
    if (ref !== undefined) frame.ref = ref;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends raw audio of the current answer as one binary frame. */
  sendBinary(bytes) {
    if (!this._joined || !this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    this._ws.send(bytes);
    this.stats.binaryFramesSent += 1;
    return true;
  }

  /** Says goodbye (1000) and never reconnects. */
  close() {
    this._userClosed = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    this._teardown();
    if (ws) {
      try {
        ws.close(1000, 'bye');
      } catch {
        /* already closed */
      }
    }
    this._setState('ended', { code: 1000, reason: 'closed by the page' });
  }

  /**
   * Test hook: drops the socket as a network failure would, then recovers
   * through the normal reconnect path. The server sees a Close with `code`
   * (4000 by default: not a final code); the client does not wait for the
   * server's answer, whose 1000 would otherwise read as a normal end.
   */
  dropForTest(code = CLIENT_DROP) {
    this._drop(code, 'dropped for test');
  }

  // ---------------------------------------------------------------------
  // Internals

  _emit(type, data, frame) {
    const own = this._handlers.get(type) || [];
    // `*` sees frames only, not the client's own `state` and `snapshot`.
    const any = type === 'state' || type === 'snapshot' ? [] : this._handlers.get('*') || [];
    const handlers = [...own, ...any];
    for (const fn of handlers) {
      try {
        fn(data, frame);
      } catch (err) {
        // One broken handler must not stop the stream for the others.
        console.error(`interviewd client: handler for ${type} failed`, err);
      }
    }
  }

  _setState(state, detail) {
    this._state = state;
    this._emit('state', { state, attempt: this._attempt, maxAttempts: MAX_ATTEMPTS, ...detail });
  }

  _readStoredSeq() {
    try {
      const raw = window.sessionStorage.getItem(this.storageKey);
      const n = raw === null ? NaN : Number(raw);
      return Number.isSafeInteger(n) && n >= 0 ? n : null;
    } catch {
      return null; // storage disabled: resume from memory only
    }
  }

  _storeSeq(seq) {
    this._lastSeq = seq;
    try {
      if (seq === null) window.sessionStorage.removeItem(this.storageKey);
      else window.sessionStorage.setItem(this.storageKey, String(seq));
    } catch {
      /* storage full or disabled: memory still has it */
    }
  }

  _open() {
    this._retryTimer = null;
    this._joined = false;
    this.stats.connects += 1;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error('interviewd client: cannot open the socket', err);
      this._setState('disconnected', { code: 0, reason: String(err), final: true });
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    this._lastHeard = Date.now();
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event.code, event.reason);
    // An error is always followed by a close, which is where we act.
    ws.onerror = () => {};
    // A socket that never says `connected` or never answers the join is as
    // good as dead: drop it and go through the normal retry path.
    this._joinTimer = setTimeout(() => {
      if (this._ws === ws && !this._joined) this._drop(CLIENT_DROP, 'join timed out');
    }, JOIN_TIMEOUT_MS);
  }

  _onMessage(ws, event) {
    if (ws !== this._ws) return; // a socket we already gave up on
    this._lastHeard = Date.now();
    if (typeof event.data !== 'string') return; // the server sends no binary frames
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      console.warn('interviewd client: a frame that is not JSON was ignored');
      return;
    }
    const type = frame.type;
    const data = frame.data || {};

    if (type === 'connected') {
      this._startHeartbeat(Number(data.heartbeatIntervalMs) || 30000);
      this._sentLastSeq = this._lastSeq;
      const join = { interviewId: this.interviewId };
      if (this._lastSeq !== null) join.lastSeq = this._lastSeq;
      ws.send(JSON.stringify({ type: this.role === 'candidate' ? 'join-interview' : 'observe-interview', data: join }));
      this._emit(type, data, frame);
      return;
    }

    if (JOIN_REPLIES.has(type)) {
      this._onJoined(data, frame);
      return;
    }

    if (typeof frame.seq === 'number') {
      // Exactly once, in order: whatever was processed before is dropped.
      if (this._lastSeq !== null && frame.seq <= this._lastSeq) {
        this.stats.duplicatesDropped += 1;
        return;
      }
      this._storeSeq(frame.seq);
      this.stats.delivered += 1;
    }
    this._emit(type, data, frame);
  }

  _onJoined(data, frame) {
    clearTimeout(this._joinTimer);
    this._joinTimer = null;
    const head = typeof data.lastSeq === 'number' ? data.lastSeq : 0;
    if (!data.recovered || this._needsSnapshot) {
      // After a recovered join the replay brings everything above what we
      // sent; below it, the snapshot is all a fresh page has. Without
      // recovery the snapshot is the whole truth up to the head.
      const upTo = data.recovered && this._sentLastSeq !== null ? this._sentLastSeq : head;
      const transcript = (data.transcript || []).filter((t) => t.seq <= upTo);
      // Set before emitting: the seq can go down, when the server no longer
      // has (or never had) what this tab remembered.
      this._storeSeq(upTo);
      this._needsSnapshot = false;
      this._emit('snapshot', { ...data, transcript, upToSeq: upTo });
    }
    this._joined = true;
    this._attempt = 0;
    this._emit(frame.type, data, frame);
    this._setState('live', { recovered: Boolean(data.recovered) });
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._teardown();
    if (this._userClosed) return;
    if (FINAL_CLOSE_CODES.has(code)) {
      this._setState(code === 1000 ? 'ended' : 'disconnected', { code, reason, final: true });
      return;
    }
    this._scheduleRetry(code, reason);
  }

  /** Abandons the current socket without waiting for its closing handshake. */
  _drop(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._teardown();
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(code, reason);
    } catch {
      /* already closing */
    }
    if (!this._userClosed) this._scheduleRetry(code, reason);
  }

  _teardown() {
    clearTimeout(this._joinTimer);
    clearInterval(this._heartbeatTimer);
    this._joinTimer = null;
    this._heartbeatTimer = null;
    this._joined = false;
    this._ws = null;
  }

  _scheduleRetry(code, reason) {
    if (this._attempt >= MAX_ATTEMPTS) {
      this._setState('disconnected', { code, reason, final: false });
      return;
    }
    // Jitter (±20 %) keeps a crowd of clients dropped by the same restart
    // from coming back in the same millisecond.
    const delayMs = Math.round(BACKOFF_MS[this._attempt] * (0.8 + Math.random() * 0.4));
    this._attempt += 1;
    this._setState('reconnecting', { code, reason, delayMs });
    this._retryTimer = setTimeout(() => this._open(), delayMs);
  }

  /**
   * The application heartbeat of PROTOCOL section 3. It also notices a
   * half-open connection (no frame heard for two intervals, not even a
   * heartbeat-ack), which a browser can take minutes to report by itself.
   */
  _startHeartbeat(intervalMs) {
    clearInterval(this._heartbeatTimer);
    const ws = this._ws;
    let lastTick = Date.now();
    this._heartbeatTimer = setInterval(() => {
      if (ws !== this._ws) return;
      const now = Date.now();
      // A tick that comes late means the browser throttled our timers (a
      // background tab), not that the server went quiet: judge only on time.
      const onTime = now - lastTick < 1.5 * intervalMs;
      lastTick = now;
      if (onTime && now - this._lastHeard > 2 * intervalMs) {
        this._drop(CLIENT_DROP, 'nothing heard from the server');
        return;
      }
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'heartbeat', data: {} }));
    }, intervalMs);
  }
}
