package ext

import (
	"errors"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) wait(d time.Duration) { c.t = c.t.Add(d) }
func newRetrier(c *fakeClock) Retrier {
	return Retrier{Now: c.now, Wait: c.wait, Jitter: func() float64 { return 1 }}
}

func TestRetryOnlyRetryableStatusesAndErrors(t *testing.T) {
	for status, want := range map[int]Result{200: ResultOK, 204: ResultOK, 400: ResultRejected, 401: ResultRejected, 404: ResultRejected} {
		c := &fakeClock{time.Unix(0, 0)}
		calls := 0
		o := newRetrier(c).Push(func(time.Duration) (*Response, error) { calls++; return &Response{Status: status}, nil },
			func() time.Time { return time.Unix(100, 0) }, time.Time{})
		if o.Result != want || calls != 1 {
			t.Errorf("%d: result %v after %d calls", status, o.Result, calls)
		}
	}
	for _, status := range []int{429, 500, 503} {
		c := &fakeClock{time.Unix(0, 0)}
		calls := 0
		o := newRetrier(c).Push(func(time.Duration) (*Response, error) {
			calls++
			if calls < 3 {
				return &Response{Status: status}, nil
			}
			return &Response{Status: 204}, nil
		}, func() time.Time { return time.Unix(100, 0) }, time.Time{})
		if o.Result != ResultOK || calls != 3 {
			t.Errorf("%d: %v after %d", status, o.Result, calls)
		}
	}
}

func TestBackoffScheduleAndDeadline(t *testing.T) {
	c := &fakeClock{time.Unix(0, 0)}
	var waits []time.Duration
	r := newRetrier(c)
	r.Wait = func(d time.Duration) { waits = append(waits, d); c.t = c.t.Add(d) }
	o := r.Push(func(time.Duration) (*Response, error) { return nil, errors.New("connection refused") },
		func() time.Time { return time.Unix(20, 0) }, time.Time{})
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if o.Result != ResultOutOfTime || o.LastError != "connection refused" || len(waits) != len(want) {
		t.Fatalf("%v %q waits %v", o.Result, o.LastError, waits)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

func TestRetryAfterIsHonouredAndCarriedOver(t *testing.T) {
	c := &fakeClock{time.Unix(0, 0)}
	calls := 0
	o := newRetrier(c).Push(func(time.Duration) (*Response, error) {
		calls++
		return &Response{Status: 429, Headers: map[string]string{"retry-after": "30"}}, nil
	}, func() time.Time { return time.Unix(10, 0) }, time.Time{})
	if o.Result != ResultOutOfTime || calls != 1 || !o.RetryAt.Equal(time.Unix(30, 0)) {
		t.Fatalf("%v calls %d retry at %v", o.Result, calls, o.RetryAt)
	}
	// The next push (e.g. the SHUTDOWN drain) waits for it first.
	c.t = time.Unix(25, 0)
	calls = 0
	o = newRetrier(c).Push(func(time.Duration) (*Response, error) { calls++; return &Response{Status: 204}, nil },
		func() time.Time { return time.Unix(40, 0) }, o.RetryAt)
	if o.Result != ResultOK || calls != 1 || !c.t.Equal(time.Unix(30, 0)) {
		t.Fatalf("%v calls %d at %v", o.Result, calls, c.t)
	}
}
