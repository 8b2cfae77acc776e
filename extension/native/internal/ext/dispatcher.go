package ext

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ev "lokitelemetry/internal/envvars"
)

// ManagedPushBudget is the time each push gets on Managed Instances (a rolling deadline).
const ManagedPushBudget = 30 * time.Second

// RuntimeDoneMemory is how many recent runtimeDone request ids are remembered.
const RuntimeDoneMemory = 256

// How a Loki without structured metadata answers a push carrying it (measured on the real
// binaries): Loki 2.7 fails to decode the request and stores nothing of it ("loghttp.PushRequest.
// Streams: []*loghttp.Stream: unmarshalerDecoder: Value is string, but can't find closing …");
// Loki 2.9 answers "… includes structured metadata, but this feature is disallowed …" and stores
// the entries of the request that carry none.
var decodingErrorHints = []string{"unmarshalerdecoder", "loghttp.pushrequest", "cannot unmarshal"}

const metadataHint = "structured metadata"

// Metadata rejection kinds.
const (
	notAMetadataRejection = iota
	rejectedWholeRequest  // nothing stored: re-send every entry
	rejectedMetadataOnly  // entries without metadata stored: re-send only those that had some
)

// MetadataRejection tells a "no structured metadata here" 400 from any other rejection.
func MetadataRejection(resp *Response) int {
	if resp == nil || resp.Status != 400 {
		return notAMetadataRejection
	}
	body := resp.Body
	if len(body) > 4096 {
		body = body[:4096]
	}
	text := strings.ToLower(string(body))
	for _, h := range decodingErrorHints {
		if strings.Contains(text, h) {
			return rejectedWholeRequest
		}
	}
	if strings.Contains(text, metadataHint) {
		return rejectedMetadataOnly
	}
	return notAMetadataRejection
}

// MetadataRejected reports whether the answer is either kind of metadata rejection.
func MetadataRejected(resp *Response) bool { return MetadataRejection(resp) != notAMetadataRejection }

// Drops are the loss counters in DROP_REASONS order.
type Drops [4]int

func (d Drops) any() bool { return d[0] != 0 || d[1] != 0 || d[2] != 0 || d[3] != 0 }

// String is "buffer_full=N, rejected_by_loki=N, shutdown_deadline=N, lambda_logs_dropped=N".
func (d Drops) String() string {
	parts := make([]string, len(ev.DROP_REASONS))
	for i, name := range ev.DROP_REASONS {
		parts[i] = fmt.Sprintf("%s=%d", name, d[i])
	}
	return strings.Join(parts, ", ")
}

// Stats are the dispatcher's counters (guarded by the dispatcher's mutex).
type Stats struct {
	EntriesReceived int
	EntriesSent     int
	RequestsSent    int
	Drops           Drops
}

// SendFunc pushes one gzip'd body within timeout.
type SendFunc func(body []byte, timeout time.Duration) (*Response, error)

// Dispatcher sits between the listener and Loki: the bounded buffer, the flush triggers of the
// background sender, the pushes of the main goroutine (end of invoke, high water, SHUTDOWN),
// drop accounting and the fallback for a Loki without structured metadata. Every push holds
// pushMu: one connection, one request at a time.
type Dispatcher struct {
	conv     *Converter
	convMu   sync.Mutex
	send     SendFunc
	labels   [numStreams]string
	batch    int
	interval time.Duration
	maxReq   int
	url      string
	retrier  Retrier

	mu         sync.Mutex
	buf        *Buffer
	changed    chan struct{} // closed (and replaced) whenever something arrives
	deadline   time.Time
	done       map[string]int64 // runtimeDone request id -> its event time (ns)
	volumes    invokeVolumes
	doneOrder  []string
	stats      Stats
	reported   Drops
	forcePush  bool
	lastError  string
	notBefore  time.Time
	noDeadline bool // Managed Instances: never frozen, no event deadlines
	// lokiFailing: the last push attempt failed (connection error, 429/5xx): Loki is down or
	// overloaded. Cleared by the next attempt Loki answers otherwise.
	lokiFailing bool
	metadataOff atomic.Bool

	pushMu     chan struct{} // a lock with a timed acquire: holding it = one push at a time
	wake       chan struct{}
	stop       chan struct{}
	stopOnce   sync.Once
	senderDone chan struct{}
}

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Converter        *Converter
	Send             SendFunc
	Labels           [numStreams]string
	BatchSize        int
	FlushInterval    time.Duration
	MaxBufferBytes   int
	URLForMessages   string
	MaxRequestBytes  int
	ManagedInstances bool
}

// NewDispatcher builds a dispatcher (the sender is started by Start).
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = MaxRequestBytes
	}
	// One request in flight holds at most a quarter of the buffer, so that while it is stuck in
	// retries (Loki down) new lines still fit and "drop the oldest" evicts queued lines older
	// than them rather than the newest ones.
	maxReq := max(1, min(o.MaxRequestBytes, o.MaxBufferBytes/4))
	d := &Dispatcher{
		conv: o.Converter, send: o.Send, labels: o.Labels, batch: o.BatchSize, interval: o.FlushInterval,
		maxReq: maxReq, url: o.URLForMessages, buf: NewBuffer(o.MaxBufferBytes),
		changed: make(chan struct{}), deadline: time.Now().Add(time.Hour), done: map[string]int64{},
		noDeadline: o.ManagedInstances, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		pushMu: make(chan struct{}, 1),
	}
	d.retrier = Retrier{Now: time.Now, Wait: d.sleep, Jitter: Jitter}
	return d
}

func (d *Dispatcher) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Accept converts one delivery and queues its entries (listener goroutine, after the 200).
func (d *Dispatcher) Accept(body []byte) {
	defer func() {
		if r := recover(); r != nil {
			WarnOnce("convert", fmt.Sprintf("could not read a telemetry delivery (%v); skipped", r))
		}
	}()
	// Lambda delivers one batch at a time, but nothing forbids two connections: the converter's
	// state (request id, repeat detection) must see deliveries in turn.
	d.convMu.Lock()
	conv := d.conv.Convert(body)
	d.convMu.Unlock()
	d.mu.Lock()
	if len(conv.Entries) > 0 {
		d.stats.EntriesReceived += len(conv.Entries)
		before := d.buf.Accepted
		d.stats.Drops[0] += d.buf.Add(conv.Entries, nowMono())
		d.volumes.add(d.buf.Accepted - before)
	}
	d.stats.Drops[3] += conv.LambdaDroppedRecords
	for _, rd := range conv.RuntimeDone {
		d.volumes.invokeDone()
		if _, ok := d.done[rd.RequestID]; !ok {
			d.doneOrder = append(d.doneOrder, rd.RequestID)
		}
		d.done[rd.RequestID] = rd.TimeNs
	}
	for len(d.doneOrder) > RuntimeDoneMemory {
		delete(d.done, d.doneOrder[0])
		d.doneOrder = d.doneOrder[1:]
	}
	d.notifyLocked()
	d.mu.Unlock()
	d.poke()
}

var monoBase = time.Now()

func nowMono() int64 { return int64(time.Since(monoBase)) }

// SetDeadline: pushes from now on must end by this time (the current event's deadline).
func (d *Dispatcher) SetDeadline(t time.Time) {
	d.mu.Lock()
	d.deadline = t
	d.mu.Unlock()
	d.poke()
}

// Deadline is the current event's deadline.
func (d *Dispatcher) Deadline() time.Time {
	if d.noDeadline {
		// Managed Instances: never frozen and no INVOKE to bring a deadline: a rolling budget
		// per push (the Python build's 30 s).
		return time.Now().Add(ManagedPushBudget)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadline
}

// PushSoon asks the sender to push whatever is queued now (dense invokes of adaptive mode).
// Nothing queued, nothing forced: lines arriving later wait for the size and age triggers like
// in batch mode. Forcing them would push each delivery as it comes, one request per trickle,
// and a slow Loki (0.5 s per answer) then falls behind: the backlog is left to the SHUTDOWN
// drain, which has 1.8 s.
func (d *Dispatcher) PushSoon() {
	d.mu.Lock()
	if d.buf.Len() > 0 {
		d.forcePush = true
	}
	d.mu.Unlock()
	d.poke()
}

// HeldBytes is the counted size of what is queued and in flight (what MaxBufferBytes bounds).
func (d *Dispatcher) HeldBytes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.HeldBytes()
}

// HighWaterMark is the held bytes from which a push before next is due (invoke_volume.go).
func (d *Dispatcher) HighWaterMark(percent int, previousDone bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return highWaterMark(d.buf.MaxBytes, percent, d.volumes.largest(), previousDone)
}

// Pending is the number of queued entries.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.Len()
}

// RuntimeDoneTime is the event time (ns) of the request's platform.runtimeDone, if it arrived.
func (d *Dispatcher) RuntimeDoneTime(rid string) (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.done[rid]
	return t, ok
}

// Stats is a copy of the counters.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// LokiFailing reports whether the last push attempt failed (connection error, 429/5xx).
func (d *Dispatcher) LokiFailing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lokiFailing
}

// MetadataAllowed is false once Loki was found not to take structured metadata.
func (d *Dispatcher) MetadataAllowed() bool { return !d.metadataOff.Load() }

func waitChan(ch <-chan struct{}, left time.Duration) {
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// WaitRuntimeDone blocks until platform.runtimeDone of the request was delivered (or the deadline).
func (d *Dispatcher) WaitRuntimeDone(rid string, deadline time.Time) bool {
	for {
		d.mu.Lock()
		_, ok := d.done[rid]
		ch := d.changed
		d.mu.Unlock()
		if ok {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		waitChan(ch, left)
	}
}

// WaitForData waits until something is queued (true) or timeout passes with nothing (false).
func (d *Dispatcher) WaitForData(timeout time.Duration) bool {
	end := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		n := d.buf.Len()
		ch := d.changed
		d.mu.Unlock()
		if n > 0 {
			return true
		}
		left := time.Until(end)
		if left <= 0 {
			return false
		}
		waitChan(ch, left)
	}
}

// Flush pushes everything queued now (main goroutine); true when emptied in time.
func (d *Dispatcher) Flush(deadline time.Time) bool {
	return d.FlushUntil(deadline, 0)
}

// FlushUntil pushes until fewer than belowBytes are queued (0: until nothing is queued or in
// flight) or the deadline. A push the background sender has in flight is waited for (pushMu):
// its entries are not queued any more, but they are not in Loki yet either.
func (d *Dispatcher) FlushUntil(deadline time.Time, belowBytes int) bool {
	return d.flushUntil(func() time.Time { return deadline }, belowBytes)
}

// FlushHighWater is FlushUntil for the high-water push before next: it ends at the first failed
// attempt (no retries there: with Loki failing they would only add their waits to the invoke;
// the sender keeps trying in the thawed time).
func (d *Dispatcher) FlushHighWater(deadline time.Time, belowBytes int) bool {
	return d.flushUntil(func() time.Time {
		if d.LokiFailing() {
			return time.Time{}
		}
		return deadline
	}, belowBytes)
}

func (d *Dispatcher) flushUntil(deadlineFn func() time.Time, belowBytes int) bool {
	for {
		if !d.lockPushBy(deadlineFn) {
			return false // the sender's push did not end in time
		}
		d.mu.Lock()
		var reached bool
		if belowBytes > 0 {
			reached = d.buf.QueuedBytes < belowBytes
		} else {
			reached = d.buf.Len() == 0 && !d.reportDueLocked()
		}
		d.mu.Unlock()
		if reached {
			d.unlockPush()
			return true
		}
		if !time.Now().Before(deadlineFn()) {
			d.unlockPush()
			return false
		}
		ok := d.pushOnceLocked(deadlineFn, time.Sleep)
		d.unlockPush()
		if !ok {
			return false
		}
	}
}

func (d *Dispatcher) lockPush() { d.pushMu <- struct{}{} }

func (d *Dispatcher) unlockPush() { <-d.pushMu }

// lockPushBy takes the push lock, waiting at most until deadlineFn(), which is re-read whenever
// the dispatcher's state changes (a failing Loki ends the high-water push's wait at once).
func (d *Dispatcher) lockPushBy(deadlineFn func() time.Time) bool {
	for {
		select {
		case d.pushMu <- struct{}{}:
			return true
		default:
		}
		left := time.Until(deadlineFn())
		if left <= 0 {
			return false
		}
		d.mu.Lock()
		ch := d.changed
		d.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case d.pushMu <- struct{}{}:
			t.Stop()
			return true
		case <-t.C:
			return false
		case <-ch:
			t.Stop()
		}
	}
}

// Start runs the background sender.
func (d *Dispatcher) Start() {
	d.senderDone = make(chan struct{})
	go d.senderLoop()
}

// StopSender stops the background sender (at SHUTDOWN, before the final drain). It is stopped
// before the SHUTDOWN deadline is set: a sender woken by the new deadline would otherwise start
// a push of whatever small batch is queued, and the drain would wait for that slow-Loki answer
// before pushing full requests itself.
func (d *Dispatcher) StopSender(deadline time.Time) {
	d.stopOnce.Do(func() { close(d.stop) })
	d.SetDeadline(deadline)
	if d.senderDone != nil {
		waitChan(d.senderDone, 500*time.Millisecond)
	}
}

func (d *Dispatcher) stopped() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// sleep waits, returning early when the sender is stopped.
func (d *Dispatcher) sleep(t time.Duration) {
	timer := time.NewTimer(t)
	defer timer.Stop()
	select {
	case <-d.stop:
	case <-timer.C:
	}
}

// GiveUpRemaining counts what could not be shipped before the shutdown deadline.
func (d *Dispatcher) GiveUpRemaining() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.buf.Len()
	d.buf.Settle(d.buf.Take(1 << 62))
	d.stats.Drops[2] += n
	return n
}

// due: 0 if a push is due now, else time until the age trigger; -1 when nothing is queued.
func (d *Dispatcher) dueLocked(now int64) time.Duration {
	n := d.buf.Len()
	if n == 0 {
		d.forcePush = false
		if d.reportDueLocked() {
			return 0
		}
		return -1
	}
	if n >= d.batch || d.forcePush {
		return 0
	}
	oldest, _ := d.buf.OldestArrival()
	return max(0, time.Duration(oldest)+d.interval-time.Duration(now))
}

func (d *Dispatcher) senderLoop() {
	defer close(d.senderDone)
	for !d.stopped() {
		func() {
			defer func() {
				if r := recover(); r != nil { // never let the sender die silently
					WarnOnce("sender", fmt.Sprintf("sender error %v; continuing", r))
					d.sleep(100 * time.Millisecond)
				}
			}()
			d.mu.Lock()
			due := d.dueLocked(nowMono())
			ch := d.changed
			dl := d.deadline
			d.mu.Unlock()
			if due != 0 {
				var timer <-chan time.Time
				if due > 0 {
					t := time.NewTimer(due)
					defer t.Stop()
					timer = t.C
				}
				select {
				case <-d.stop:
				case <-ch:
				case <-d.wake:
				case <-timer:
				}
				return
			}
			if d.stopped() {
				return // SHUTDOWN: the drain pushes from here on
			}
			if !d.pushOnce(d.senderDeadline, d.sleep) {
				// Out of time for this invoke: wait for the next event to move the deadline.
				for !d.stopped() {
					d.mu.Lock()
					moved := !d.deadline.Equal(dl)
					d.mu.Unlock()
					if moved || d.noDeadline {
						if d.noDeadline {
							d.sleep(BackoffInitial)
						}
						return
					}
					select {
					case <-d.stop:
					case <-d.wake:
					}
				}
			}
		}()
	}
}

func (d *Dispatcher) senderDeadline() time.Time {
	if d.stopped() {
		return time.Time{}
	}
	return d.Deadline()
}

// pushOnce takes one request's worth of entries and pushes it; false if time ran out (the
// entries not delivered are kept, at the front).
func (d *Dispatcher) pushOnce(deadline func() time.Time, wait func(time.Duration)) bool {
	d.lockPush()
	defer d.unlockPush()
	return d.pushOnceLocked(deadline, wait)
}

func (d *Dispatcher) pushOnceLocked(deadline func() time.Time, wait func(time.Duration)) bool {
	d.mu.Lock()
	report, hasReport := d.dropReportEntryLocked()
	taken := d.buf.Take(d.maxReq)
	d.mu.Unlock()
	if len(taken) == 0 && !hasReport {
		return true
	}
	entries := taken
	if hasReport {
		entries = append(entries[:len(entries):len(entries)], report)
	}
	settled := 0
	ok := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				WarnOnce("push", fmt.Sprintf("push error %v; continuing", r))
			}
		}()
		settled, ok = d.pushEntries(entries, deadline, wait)
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	if settled > len(taken) {
		settled = len(taken)
	}
	d.buf.Settle(taken[:settled])
	d.buf.PutBack(taken[settled:])
	if !ok && hasReport {
		d.reported = Drops{} // report again next time
	}
	return ok
}

func isReport(e *Entry) bool {
	return e.Stream == StreamExtension && e.Meta == nil && strings.HasPrefix(e.Line, Marker)
}

// pushEntries pushes entries in bodies of at most maxReq bytes; it returns how many entries from
// the front are settled (delivered or finally rejected) and whether all were.
func (d *Dispatcher) pushEntries(entries []Entry, deadline func() time.Time, wait func(time.Duration)) (int, bool) {
	settled := 0
	retrier := d.retrier
	retrier.Wait = wait
	for _, req := range EncodeRequests(entries, &d.labels, d.MetadataAllowed(), d.maxReq) {
		outcome := d.pushBody(retrier, req.Body, deadline)
		kind := notAMetadataRejection
		if outcome.Result == ResultRejected && d.MetadataAllowed() && hasMeta(req.Entries) {
			kind = MetadataRejection(outcome.Response)
		}
		if kind != notAMetadataRejection {
			// Re-send at once without metadata what Loki did not store: all of a request it could not
			// decode, only the entries that carried metadata when it stored the others. Loki
			// de-duplicates identical entries, but none are sent twice anyway.
			resend := req.Entries
			stored := 0
			if kind == rejectedMetadataOnly {
				resend = nil
				for i := range req.Entries {
					if req.Entries[i].Meta != nil {
						resend = append(resend, req.Entries[i])
					} else {
						stored++
					}
				}
				d.sent(stored)
			}
			for _, again := range EncodeRequests(resend, &d.labels, false, d.maxReq) {
				o := d.pushBody(retrier, again.Body, deadline)
				switch o.Result {
				case ResultOK:
					d.sent(len(again.Entries))
					if !d.metadataOff.Swap(true) {
						Warn("Loki does not accept structured metadata; request_id, level and tenant_id now go into the line instead")
					}
				case ResultRejected:
					d.rejected(again.Entries, o.Response)
				default:
					// Out of time: the whole request is kept and re-sent later; Loki de-duplicates the
					// entries it already stored.
					return settled, false
				}
			}
			settled += len(req.Entries)
			continue
		}
		switch outcome.Result {
		case ResultOK:
			d.sent(len(req.Entries))
		case ResultRejected:
			d.rejected(req.Entries, outcome.Response)
		default:
			d.mu.Lock()
			if outcome.LastError != "" {
				d.lokiFailing = true
			}
			newErr := outcome.LastError != "" && outcome.LastError != d.lastError
			if newErr {
				d.lastError = outcome.LastError
			}
			d.mu.Unlock()
			if newErr {
				Warn(fmt.Sprintf("cannot push to Loki at %s: %s; will retry while time is left", d.url, outcome.LastError))
			}
			return settled, false
		}
		settled += len(req.Entries)
	}
	return settled, true
}

func (d *Dispatcher) sent(n int) {
	d.mu.Lock()
	d.stats.EntriesSent += n
	d.lastError = ""
	d.lokiFailing = false
	d.mu.Unlock()
}

func hasMeta(entries []Entry) bool {
	for i := range entries {
		if entries[i].Meta != nil {
			return true
		}
	}
	return false
}

func (d *Dispatcher) pushBody(r Retrier, body []byte, deadline func() time.Time) Outcome {
	d.mu.Lock()
	nb := d.notBefore
	d.mu.Unlock()
	o := r.Push(func(timeout time.Duration) (*Response, error) {
		resp, err := d.send(body, timeout)
		// Failing as soon as one attempt fails, not only when the retries ran out of time: the
		// high-water push before next is skipped meanwhile instead of waiting for the sender's
		// retries (measured: every invoke held for the 2 s budget while Loki answered 503).
		failing := err != nil || IsRetryable(resp.Status)
		d.mu.Lock()
		if failing {
			if !d.lokiFailing {
				d.lokiFailing = true
				d.notifyLocked() // ends a high-water push's wait for the lock
			}
		} else { // any other answer (2xx, or a final 4xx): Loki is up
			d.lokiFailing = false
		}
		d.mu.Unlock()
		return resp, err
	}, deadline, nb)
	d.mu.Lock()
	d.notBefore = o.RetryAt
	d.stats.RequestsSent++
	d.mu.Unlock()
	return o
}

func (d *Dispatcher) rejected(entries []Entry, resp *Response) {
	// Our own drop-report line is not a user entry: counting it would make a new report due,
	// which Loki rejects again, and so on (a push loop).
	lost := 0
	for i := range entries {
		if !isReport(&entries[i]) {
			lost++
		}
	}
	d.mu.Lock()
	d.stats.Drops[1] += lost
	d.mu.Unlock()
	body := resp.Body
	if len(body) > 300 {
		body = body[:300]
	}
	Warn(fmt.Sprintf("Loki at %s rejected a push of %d entries with HTTP %d: %s (not retried; Loki keeps the valid entries of a 400, so up to that many may be missing)",
		d.url, lost, resp.Status, strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD"))))
}

func (d *Dispatcher) reportDueLocked() bool {
	return d.stats.Drops != d.reported && d.stats.Drops.any()
}

// dropReportEntryLocked: a Loki line (type="extension") when the drop counters moved.
func (d *Dispatcher) dropReportEntryLocked() (Entry, bool) {
	drops := d.stats.Drops
	if drops == d.reported || !drops.any() {
		return Entry{}, false
	}
	d.reported = drops
	text := "log entries lost so far: " + drops.String()
	Warn(text)
	e := Entry{Stream: StreamExtension, Ts: time.Now().UnixNano(), Line: Marker + " " + text}
	e.Size = entrySize(&e)
	return e, true
}
