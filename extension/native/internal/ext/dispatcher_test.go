package ext

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLoki answers pushes with a scripted status per call and records the bodies.
type fakeLoki struct {
	mu     sync.Mutex
	bodies []string
	answer func(body string) *Response
}

func (f *fakeLoki) send(gz []byte, _ time.Duration) (*Response, error) {
	r, _ := gzip.NewReader(bytes.NewReader(gz))
	raw, _ := io.ReadAll(r)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(raw))
	f.mu.Unlock()
	return f.answer(string(raw)), nil
}

func captureDiag(t *testing.T) *[]string {
	t.Helper()
	var lines []string
	var mu sync.Mutex
	old := diagOut
	diagOut = func(b []byte) { mu.Lock(); lines = append(lines, string(b)); mu.Unlock() }
	t.Cleanup(func() { diagOut = old })
	return &lines
}

func newTestDispatcher(f *fakeLoki, maxBuffer int) *Dispatcher {
	return NewDispatcher(DispatcherOptions{
		Converter: NewConverter(false, false, 256000, false), Send: f.send,
		Labels: StreamLabels("fn", nil), BatchSize: 100, FlushInterval: time.Second,
		MaxBufferBytes: maxBuffer, URLForMessages: "http://loki",
	})
}

const delivery = `[
 {"time":"2024-01-02T03:04:05.000Z","type":"platform.start","record":{"requestId":"r1"}},
 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"[INFO]\t2024-01-02T03:04:05.001Z\tr1\thello\n"},
 {"time":"2024-01-02T03:04:05.002Z","type":"function","record":"plain\n"}]`

func TestLoki2xFallbackResendsWithoutMetadataOnce(t *testing.T) {
	for name, rejection := range map[string]string{
		"2.9": "stream '{function=\"fn\"}' includes structured metadata, but this feature is disallowed. Please see `limits_config.structured_metadata` or contact your Loki administrator to enable it.",
		"2.7": "loghttp.PushRequest.Streams: []*loghttp.Stream: unmarshalerDecoder: Value is string, but can't find closing '\"' symbol, error found in #10 byte of ...",
	} {
		t.Run(name, func(t *testing.T) {
			diag := captureDiag(t)
			f := &fakeLoki{answer: func(body string) *Response {
				if strings.Contains(body, `"request_id":`) {
					return &Response{Status: 400, Body: []byte(rejection)}
				}
				return &Response{Status: 204}
			}}
			d := newTestDispatcher(f, 1<<20)
			d.Accept([]byte(delivery))
			if !d.Flush(time.Now().Add(5 * time.Second)) {
				t.Fatal("flush ran out of time")
			}
			d.Accept([]byte(delivery))
			d.Flush(time.Now().Add(5 * time.Second))
			if len(f.bodies) != 3 || d.MetadataAllowed() {
				t.Fatalf("%d pushes (want: rejected, re-sent, then plain), metadata allowed %v", len(f.bodies), d.MetadataAllowed())
			}
			if !strings.Contains(f.bodies[1], `hello"`) || !strings.Contains(f.bodies[1], `"plain request_id=r1"`) {
				t.Fatalf("re-sent body %s", f.bodies[1])
			}
			st := d.Stats()
			if st.Drops.any() || st.EntriesSent != 4 {
				t.Fatalf("stats %+v", st)
			}
			n := 0
			for _, l := range *diag {
				if strings.Contains(l, "does not accept structured metadata") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d fallback diagnostics: %q", n, *diag)
			}
		})
	}
}

func TestOtherRejectionsAreFinalCountedAndReported(t *testing.T) {
	diag := captureDiag(t)
	f := &fakeLoki{answer: func(body string) *Response {
		if strings.Contains(body, "log entries lost so far") {
			return &Response{Status: 204}
		}
		return &Response{Status: 400, Body: []byte("entry too far behind")}
	}}
	d := newTestDispatcher(f, 1<<20)
	d.Accept([]byte(delivery))
	d.Flush(time.Now().Add(5 * time.Second))
	st := d.Stats()
	if st.Drops != (Drops{0, 2, 0, 0}) {
		t.Fatalf("drops %v", st.Drops)
	}
	if len(f.bodies) != 2 || !strings.Contains(f.bodies[1], `"[loki-telemetry-extension] log entries lost so far: buffer_full=0, rejected_by_loki=2, shutdown_deadline=0, lambda_logs_dropped=0"`) ||
		!strings.Contains(f.bodies[1], `"type":"extension"`) {
		t.Fatalf("bodies %q", f.bodies)
	}
	want := "[loki-telemetry-extension] log entries lost so far: buffer_full=0, rejected_by_loki=2, shutdown_deadline=0, lambda_logs_dropped=0\n"
	found := false
	for _, l := range *diag {
		found = found || l == want
	}
	if !found {
		t.Fatalf("stderr %q", *diag)
	}
}

func TestShutdownGiveUpCountsWhatIsLeft(t *testing.T) {
	captureDiag(t)
	f := &fakeLoki{answer: func(string) *Response { return &Response{Status: 503} }}
	d := newTestDispatcher(f, 1<<20)
	d.Accept([]byte(delivery))
	if d.Flush(time.Now().Add(150 * time.Millisecond)) {
		t.Fatal("flush succeeded against a Loki answering 503")
	}
	if !d.LokiFailing() {
		t.Fatal("a push that ran out of time on 503s must mark Loki as failing")
	}
	if n := d.GiveUpRemaining(); n != 2 || d.Stats().Drops != (Drops{0, 0, 2, 0}) {
		t.Fatalf("gave up %d, drops %v", n, d.Stats().Drops)
	}
	// The next accepted push clears it.
	f.answer = func(string) *Response { return &Response{Status: 204} }
	d.Accept([]byte(delivery))
	if !d.Flush(time.Now().Add(5*time.Second)) || d.LokiFailing() {
		t.Fatal("an accepted push must clear the failing mark")
	}
}

func TestBufferFullDropsAreCounted(t *testing.T) {
	captureDiag(t)
	f := &fakeLoki{answer: func(string) *Response { return &Response{Status: 204} }}
	d := newTestDispatcher(f, 64*1024)
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 1000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"time":"2024-01-02T03:04:05.001Z","type":"function","record":"` + strings.Repeat("x", 100) + `"}`)
	}
	b.WriteString("]")
	d.Accept([]byte(b.String()))
	// 1000 entries of 164 counted bytes into 64 KiB: 399 fit.
	if st := d.Stats(); st.Drops[0] != 1000-65536/164 || d.Pending() != 65536/164 {
		t.Fatalf("drops %v pending %d", st.Drops, d.Pending())
	}
}

func TestRuntimeDoneWaitAndMetadataRejectedRule(t *testing.T) {
	f := &fakeLoki{answer: func(string) *Response { return &Response{Status: 204} }}
	d := newTestDispatcher(f, 1<<20)
	go d.Accept([]byte(`[{"time":"2024-01-02T03:04:05.004Z","type":"platform.runtimeDone","record":{"requestId":"r9"}}]`))
	if !d.WaitRuntimeDone("r9", time.Now().Add(5*time.Second)) {
		t.Fatal("runtimeDone not seen")
	}
	if ts, ok := d.RuntimeDoneTime("r9"); !ok || ts != 1704164645004000000 {
		t.Fatalf("runtimeDone time %d", ts)
	}
	if MetadataRejected(&Response{Status: 400, Body: []byte("entry for stream has timestamp too old")}) ||
		MetadataRejected(&Response{Status: 500, Body: []byte("structured metadata")}) {
		t.Fatal("an ordinary rejection taken for the metadata case")
	}
}

func TestALokiRejectingEverythingGetsOneReportPerRejectedBatch(t *testing.T) {
	captureDiag(t)
	f := &fakeLoki{answer: func(string) *Response { return &Response{Status: 400, Body: []byte("bad")} }}
	d := newTestDispatcher(f, 1<<20)
	d.Accept([]byte(delivery))
	d.Flush(time.Now().Add(5 * time.Second))
	// The rejected drop report is not itself a loss: no new report, no push storm.
	if st := d.Stats(); st.Drops != (Drops{0, 2, 0, 0}) || len(f.bodies) != 2 {
		t.Fatalf("drops %v after %d pushes", st.Drops, len(f.bodies))
	}
}

func TestMetadataFallbackResendsOnlyWhatLokiDidNotStore(t *testing.T) {
	captureDiag(t)
	mixed := `[
 {"time":"2024-01-02T03:04:05.001Z","type":"function","record":"[INFO]\t2024-01-02T03:04:05.001Z\tr1\thello\n"},
 {"time":"2024-01-02T03:04:05.002Z","type":"function","record":"plain\n"}]`
	for name, c := range map[string]struct {
		rejection   string
		plainResent bool
	}{
		"2.9 stores the entries without metadata": {"stream '{job=\"p\"}' includes structured metadata, but this feature is disallowed.", false},
		"2.7 stores nothing":                      {"loghttp.PushRequest.Streams: []*loghttp.Stream: unmarshalerDecoder: Value is string", true},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeLoki{answer: func(body string) *Response {
				if strings.Contains(body, `",{"`) { // a value with a metadata object
					return &Response{Status: 400, Body: []byte(c.rejection)}
				}
				return &Response{Status: 204}
			}}
			d := newTestDispatcher(f, 1<<20)
			d.Accept([]byte(mixed))
			d.Flush(time.Now().Add(5 * time.Second))
			if len(f.bodies) != 2 || !strings.Contains(f.bodies[1], "hello") ||
				strings.Contains(f.bodies[1], `"plain"`) != c.plainResent || strings.Contains(f.bodies[1], "{}") {
				t.Fatalf("bodies %q", f.bodies)
			}
			if st := d.Stats(); st.EntriesSent != 2 || st.Drops.any() {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// End of invoke: entries the background sender has in flight are not queued any more but not in
// Loki yet either: the main goroutine's flush must wait for that push before next (freeze).
func TestFlushWaitsForTheSendersPushInFlight(t *testing.T) {
	captureDiag(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var completed atomic.Bool
	var once sync.Once
	f := &fakeLoki{answer: func(string) *Response {
		once.Do(func() { close(entered); <-release })
		completed.Store(true)
		return &Response{Status: 204}
	}}
	d := NewDispatcher(DispatcherOptions{
		Converter: NewConverter(false, false, 256000, false), Send: f.send, Labels: StreamLabels("fn", nil),
		BatchSize: 1, FlushInterval: time.Hour, MaxBufferBytes: 1 << 20, URLForMessages: "http://loki",
	})
	d.Start()
	defer d.StopSender(time.Now())
	d.Accept([]byte(delivery))
	<-entered // the sender took the entries and is pushing them
	// Released later whatever the order; a flush that did not wait returns before it.
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	if !d.Flush(time.Now().Add(5*time.Second)) || !completed.Load() {
		t.Fatal("flush returned while the sender's push was still in flight")
	}
}

// The high-water push before next makes one attempt against a failing Loki, not the retries.
func TestHighWaterPushStopsAtTheFirstFailure(t *testing.T) {
	captureDiag(t)
	f := &fakeLoki{answer: func(string) *Response { return &Response{Status: 503} }}
	d := newTestDispatcher(f, 1<<20)
	d.Accept([]byte(delivery))
	if d.FlushHighWater(time.Now().Add(2*time.Second), 1) || len(f.bodies) != 1 || !d.LokiFailing() {
		t.Fatalf("%d attempts before next against a failing Loki", len(f.bodies))
	}
	// Once failing, not even one attempt.
	if d.FlushHighWater(time.Now().Add(2*time.Second), 1) || len(f.bodies) != 1 {
		t.Fatalf("%d attempts while Loki is known to be failing", len(f.bodies))
	}
	if d.Pending() != 2 {
		t.Fatalf("entries lost: %d pending", d.Pending())
	}
}

// While the sender's push holds the lock, a high-water push waiting for it gives up as soon as
// that push finds Loki failing (it would otherwise hold the invoke for its whole budget).
func TestHighWaterWaitEndsWhenTheSendersPushFails(t *testing.T) {
	captureDiag(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	f := &fakeLoki{answer: func(string) *Response {
		once.Do(func() { close(entered); <-release })
		return &Response{Status: 503}
	}}
	d := NewDispatcher(DispatcherOptions{
		Converter: NewConverter(false, false, 256000, false), Send: f.send, Labels: StreamLabels("fn", nil),
		BatchSize: 1, FlushInterval: time.Hour, MaxBufferBytes: 1 << 20, URLForMessages: "http://loki",
	})
	d.SetDeadline(time.Now().Add(time.Hour)) // the sender retries for long, holding the lock
	d.Start()
	defer d.StopSender(time.Now())
	d.Accept([]byte(delivery))
	<-entered
	done := make(chan bool)
	go func() { done <- d.FlushHighWater(time.Now().Add(time.Minute), 1) }()
	// Released later whatever the order; without the wake-up the waiter would sit out its minute.
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	select {
	case ok := <-done:
		if ok {
			t.Fatal("high-water push reported success against a failing Loki")
		}
	case <-time.After(20 * time.Second): // a hang detector, far below the minute-long budget
		t.Fatal("the high-water push kept waiting for the sender's lock while Loki was failing")
	}
}

// A dense invoke's wake-up with nothing queued forces nothing: the lines that arrive afterwards
// wait for the size and age triggers, as in batch mode, instead of going one request per
// delivery (with a slow Loki that pace left a backlog to the SHUTDOWN drain, which then ran out
// of time). Queued lines are still pushed at once.
func TestPushSoonWithNothingQueuedLeavesArrivalsToTheTriggers(t *testing.T) {
	d := newTestDispatcher(&fakeLoki{answer: func(string) *Response { return &Response{Status: 204} }}, 1<<20)
	d.PushSoon()
	d.Accept([]byte(delivery)) // 2 entries: below the batch size of 100, younger than 1 s
	d.mu.Lock()
	due := d.dueLocked(nowMono())
	d.mu.Unlock()
	if due <= 0 {
		t.Fatalf("push due in %v after a wake-up with nothing queued; want the age trigger", due)
	}
	d.PushSoon()
	d.mu.Lock()
	due = d.dueLocked(nowMono())
	d.mu.Unlock()
	if due != 0 {
		t.Fatalf("push due in %v after a wake-up with lines queued; want now", due)
	}
}
