package ext

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// The retry rule for Loki pushes (retry.py). Retry ONLY 429, 5xx and connection errors (incl. TLS
// errors and timeouts): Loki has already stored the valid entries of a 400 request, so a retry
// could only duplicate them. Backoff 0.1, 0.2, 0.4 … 5 s, each scaled by a random factor in
// [0.5, 1.0); a Retry-After of N seconds replaces the computed wait. Every wait and request is
// cut to the deadline, and a wait that would end past it is not started.
const (
	BackoffInitial = 100 * time.Millisecond
	BackoffFactor  = 2
	BackoffMax     = 5 * time.Second
	// RequestTimeout is the longest a single request may take, whatever time is left.
	RequestTimeout = 10 * time.Second
	// MinRequestTime: no point starting a request with less time than this left.
	MinRequestTime = 10 * time.Millisecond
)

// Result of a push with retries.
type Result int

const (
	ResultOK Result = iota
	ResultRejected
	ResultOutOfTime
)

// Response is a Loki (or AWS) answer: status, lower-cased headers, the start of the body.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// Outcome of PushWithRetry.
type Outcome struct {
	Result    Result
	Response  *Response
	Attempts  int
	LastError string
	// RetryAt: OUT_OF_TIME while a Retry-After was pending: no push before this time.
	RetryAt time.Time
}

// IsRetryable is the status rule: 429 and 5xx only.
func IsRetryable(status int) bool { return status == 429 || (status >= 500 && status <= 599) }

// Jitter is a random factor in [0.5, 1.0).
func Jitter() float64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return 0.5 + float64(binary.BigEndian.Uint16(b[:]))/131072
}

// RetryAfter reads "Retry-After: <seconds>" (HTTP dates are ignored: backoff then).
func RetryAfter(resp *Response) (time.Duration, bool) {
	raw, ok := resp.Headers["retry-after"]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || v < 0 || v >= 86400 || v != v {
		return 0, false
	}
	return time.Duration(v * float64(time.Second)), true
}

// Retrier holds the injectable clock, wait and jitter (tests replace them).
type Retrier struct {
	Now    func() time.Time
	Wait   func(time.Duration) // may return early (stop requested)
	Jitter func() float64
}

// Push calls send(timeout) until success, a final answer, or the deadline. deadline is re-read
// before every attempt: after a freeze the dispatcher moves it to the new invoke's deadline.
// notBefore carries a Retry-After over from an earlier push that ran out of time.
func (r Retrier) Push(send func(time.Duration) (*Response, error), deadline func() time.Time, notBefore time.Time) Outcome {
	delay := BackoffInitial
	attempts := 0
	lastError := ""
	var lastResp *Response
	honourUntil := notBefore
	for {
		t := r.Now()
		if honourUntil.After(t) {
			if !honourUntil.Before(deadline().Add(-MinRequestTime)) {
				return Outcome{ResultOutOfTime, lastResp, attempts, lastError, honourUntil}
			}
			r.Wait(honourUntil.Sub(t))
			t = r.Now()
			if honourUntil.After(t) { // woken early (stop requested)
				return Outcome{ResultOutOfTime, lastResp, attempts, lastError, honourUntil}
			}
		}
		left := deadline().Sub(t)
		if left < MinRequestTime {
			return Outcome{ResultOutOfTime, lastResp, attempts, lastError, time.Time{}}
		}
		attempts++
		var pause time.Duration
		resp, err := send(min(left, RequestTimeout))
		if err != nil { // connection refused/reset, DNS, TLS, timeout
			lastError = err.Error()
			pause = time.Duration(float64(delay) * r.Jitter())
		} else {
			lastResp = resp
			if resp.Status >= 200 && resp.Status < 300 {
				return Outcome{ResultOK, resp, attempts, "", time.Time{}}
			}
			if !IsRetryable(resp.Status) {
				return Outcome{ResultRejected, resp, attempts, "", time.Time{}}
			}
			lastError = "HTTP " + strconv.Itoa(resp.Status)
			if ra, ok := RetryAfter(resp); ok {
				honourUntil = r.Now().Add(ra)
				continue // the wait (or giving up) happens at the top of the loop
			}
			pause = time.Duration(float64(delay) * r.Jitter())
		}
		delay = min(delay*BackoffFactor, BackoffMax)
		if pause >= deadline().Sub(r.Now()) {
			return Outcome{ResultOutOfTime, lastResp, attempts, lastError, time.Time{}}
		}
		r.Wait(pause)
	}
}
