package ext

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func runtimeDoneAt(d *Dispatcher, rid string, t time.Time) {
	d.Accept([]byte(fmt.Sprintf(`[{"time":%q,"type":"platform.runtimeDone","record":{"requestId":%q}}]`,
		t.UTC().Format("2006-01-02T15:04:05.000Z"), rid)))
}

func TestAdaptiveDenseNeedsThreeShortIdleGaps(t *testing.T) {
	d := newTestDispatcher(&fakeLoki{answer: func(string) *Response { return &Response{Status: 204} }}, 1<<20)
	s := &Shipper{cfg: &Config{DenseGapMs: 200}}
	base := time.Now().Truncate(time.Millisecond)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	// Each invoke arrives `gap` ms after the previous one's runtimeDone.
	steps := []struct {
		gap   int
		dense bool
	}{{50, false}, {50, false}, {50, true}, {150, true}, {300, false}, {10, false}, {10, false}, {10, true}}
	clock := 0
	for i, st := range steps {
		prev := fmt.Sprintf("r%d", i)
		runtimeDoneAt(d, prev, at(clock))
		clock += st.gap
		if got := s.dense(d, prev, at(clock)); got != st.dense {
			t.Fatalf("invoke %d (gap %d ms): dense %v, want %v", i, st.gap, got, st.dense)
		}
		clock += 5
	}
	// A previous runtimeDone that has not arrived yet counts as a zero gap.
	if !s.dense(d, "not-arrived", at(clock+5000)) {
		t.Fatal("a missing runtimeDone should count as no idle time")
	}
	// Our own push before the freeze is not idle time: the gap counts from our next.
	s2 := &Shipper{cfg: &Config{DenseGapMs: 200}}
	for i := 0; i < 3; i++ {
		rid := fmt.Sprintf("slow%d", i)
		runtimeDoneAt(d, rid, at(clock))
		s2.handledNs = at(clock + 400).UnixNano() // a 400 ms push to a slow Loki, then next
		if got := s2.dense(d, rid, at(clock+450)); got != (i == 2) {
			t.Fatalf("slow Loki invoke %d: dense %v", i, got)
		}
		clock += 500
	}
	// 0 disables dense.
	s3 := &Shipper{cfg: &Config{DenseGapMs: 0}}
	for i := 0; i < 4; i++ {
		if s3.dense(d, "not-arrived", at(clock)) {
			t.Fatal("LOKI_DENSE_GAP_MS=0 must never be dense")
		}
	}
}

func TestEventDeadline(t *testing.T) {
	now := time.Now()
	d := eventDeadline(json.Number(fmt.Sprint(now.Add(3*time.Second).UnixMilli())), InvokeMargin, time.Second)
	if left := time.Until(d); left < 2*time.Second || left > 3*time.Second {
		t.Fatalf("deadline in %v", left)
	}
	if left := time.Until(eventDeadline(nil, ShutdownMargin, 2*time.Second)); left > 1800*time.Millisecond || left < time.Second {
		t.Fatalf("fallback deadline in %v", left)
	}
}

// The hand-written register body is byte for byte what json.Marshal gives.
func FuzzRegisterBody(f *testing.F) {
	for _, s := range []string{"INVOKE", "SHUTDOWN", "", "a<b", "é", "\x00", `"`, "x_1"} {
		f.Add(s, "SHUTDOWN")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, events := range [][]string{nil, {}, {a}, {a, b}} {
			if got, want := string(RegisterBody(events)), string(registerBodyJSON(events)); got != want {
				t.Fatalf("RegisterBody(%q) = %s, json.Marshal gives %s", events, got, want)
			}
		}
	})
}
