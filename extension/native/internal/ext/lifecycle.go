package ext

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ev "lokitelemetry/internal/envvars"
)

// The extension's life (lifecycle.py): register → listener → subscribe → loop on next → at
// SHUTDOWN drain before the deadline. Anything that goes wrong after register turns the extension
// into a no-op that keeps calling next: exiting before SHUTDOWN is Extension.Crash and would reset
// the function's environment.
const (
	// ShutdownMargin: Lambda SIGKILLs at the shutdown deadline; stop pushing this long before it.
	ShutdownMargin = 200 * time.Millisecond
	// InvokeMargin: stop flushing this long before an invoke's deadline (the function's timeout).
	InvokeMargin = 50 * time.Millisecond
	// ShutdownQuietSlack: at SHUTDOWN the Telemetry API may hold the last lines for up to its
	// timeoutMs; wait that long plus this for a quiet spell before the final push.
	ShutdownQuietSlack = 50 * time.Millisecond
	// ShutdownDrainReserve: stop waiting for the last invoke's runtimeDone this long before the
	// deadline, keeping time to push what its delivery brought.
	ShutdownDrainReserve = 300 * time.Millisecond
	// PreNextPushBudget: adaptive (sparse invokes) and the high-water mark: longest push before
	// next. A healthy Loki takes milliseconds for a 1 MiB request; a Loki that is down would
	// otherwise cost every invoke its whole timeout. end_of_invoke, the user's explicit choice,
	// pushes up to the invoke's deadline.
	PreNextPushBudget = 2 * time.Second
	// MaxNextFailures: next failing this many times in a row means the Runtime API is gone.
	MaxNextFailures = 3
)

func eventDeadline(deadlineMs any, margin, fallback time.Duration) time.Time {
	now := time.Now()
	if n, ok := deadlineMs.(json.Number); ok {
		if ms, err := n.Float64(); err == nil {
			wall := time.UnixMilli(0).Add(time.Duration(ms * float64(time.Millisecond)))
			return now.Add(wall.Sub(now) - margin) // keeps now's monotonic reading
		}
	}
	return now.Add(fallback - margin)
}

// Shipper is listener + subscription + dispatcher: the part that exists only when configured.
type Shipper struct {
	cfg        *Config
	env        map[string]string
	listener   *Listener
	d          *Dispatcher
	client     atomic.Pointer[LokiClient]
	ready      chan struct{}
	failed     atomic.Bool
	started    bool
	Subscribed bool

	invoked bool
	prevRID string
	gaps    []int64 // idle gaps (ms) of the last DENSE_STREAK invokes
	lastRID string
	// handledNs is the wall time the previous INVOKE's handling ended (next was called).
	handledNs int64
}

// NewShipper starts the listener and subscribes. Nothing slow happens here: the credential fetch
// waits for StartWarmUp (after the first next is sent).
func NewShipper(cfg *Config, runtimeAPI, extensionID string, env map[string]string) (*Shipper, error) {
	s, err := newListeningShipper(cfg, env)
	if err != nil {
		return nil, err
	}
	if err := s.subscribe(env["AWS_LAMBDA_RUNTIME_API"], extensionID); err != nil {
		return nil, err
	}
	return s, nil
}

// newListeningShipper builds the dispatcher and starts the listener: everything that does not
// need the extension id, so Run can do it while register is on the wire.
func newListeningShipper(cfg *Config, env map[string]string) (*Shipper, error) {
	s := &Shipper{cfg: cfg, env: env, ready: make(chan struct{})}
	conv := NewConverter(cfg.HasType("platform"), cfg.HasType("extension"), cfg.MaxLineBytes, cfg.ManagedInstances)
	s.d = NewDispatcher(DispatcherOptions{
		Converter: conv,
		Send: func(body []byte, timeout time.Duration) (*Response, error) {
			c := s.client.Load()
			if c == nil {
				return nil, errors.New("no Loki client")
			}
			return c.Send(body, timeout)
		},
		Labels: StreamLabels(cfg.FunctionName, cfg.Labels), BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval,
		MaxBufferBytes: cfg.MaxBufferBytes, URLForMessages: redactURL(cfg.URL), ManagedInstances: cfg.ManagedInstances,
	})
	l, err := StartListener(s.sink)
	if err != nil {
		return nil, err
	}
	s.listener = l
	return s, nil
}

// subscribe to the Telemetry API with the listener as destination. On an error the listener
// is closed; a Telemetry API that is not supported leaves a Shipper that ships nothing.
func (s *Shipper) subscribe(runtimeAPI, extensionID string) error {
	cfg := s.cfg
	// Always subscribe to platform events too: runtimeDone tells us an invoke's logs are all
	// here, and logsDropped is how Lambda reports loss; they are shipped only when asked for.
	types := []string{"platform"}
	for _, t := range cfg.TelemetryTypes {
		if t != "platform" {
			types = append(types, t)
		}
	}
	body := SubscribeBody(types, s.listener.Port, cfg.BufferMaxItems, cfg.BufferMaxBytes, cfg.BufferTimeoutMs)
	err := Subscribe(runtimeAPI, extensionID, body)
	if errors.Is(err, ErrTelemetryUnsupported) {
		s.listener.Close()
		Warn("the Telemetry API is not supported here (subscribe answered 202); not shipping logs")
		close(s.ready)
		s.failed.Store(true)
		return nil
	}
	if err != nil {
		s.listener.Close()
		return err
	}
	s.Subscribed = true
	return nil
}

func (s *Shipper) sink(body []byte) {
	if s.failed.Load() {
		return // gave up: keep answering 200 (the listener did), discard
	}
	s.d.Accept(body)
}

// StartWarmUp fetches the credentials (if any) and starts the sender, off the init path.
func (s *Shipper) StartWarmUp() {
	if !s.Subscribed || s.started {
		return
	}
	s.started = true
	go func() {
		defer close(s.ready)
		defer func() {
			if r := recover(); r != nil {
				s.failed.Store(true)
				Warn(fmt.Sprintf("not shipping logs: %v", r))
			}
		}()
		headers, err := s.authHeaders()
		if err == nil {
			if s.cfg.TenantID != "" {
				headers["X-Scope-OrgID"] = s.cfg.TenantID
			}
			var c *LokiClient
			c, err = NewLokiClient(s.cfg.URL, headers)
			if err == nil {
				s.client.Store(c)
				s.d.Start()
				return
			}
		}
		s.failed.Store(true)
		s.d.GiveUpRemaining()
		var se *SecretError
		if errors.As(err, &se) {
			Warn("not shipping logs: SecretError: " + se.Msg)
		} else {
			Warn(fmt.Sprintf("not shipping logs: %v", err))
		}
	}()
}

func (s *Shipper) authHeaders() (map[string]string, error) {
	h := map[string]string{}
	basic, bearer := s.cfg.BasicAuthARN, s.cfg.BearerTokenARN
	if basic == "" && bearer == "" {
		return h, nil
	}
	name, arn := ev.LOKI_BEARER_TOKEN_SECRET_ARN, bearer
	if basic != "" {
		name, arn = ev.LOKI_BASIC_AUTH_SECRET_ARN, basic
	}
	value, err := FetchSecretString(s.env, arn)
	var header string
	if err == nil {
		if basic != "" {
			header, err = BasicAuthHeader(value)
		} else {
			header, err = BearerHeader(value)
		}
	}
	if err != nil {
		return nil, &SecretError{name + ": " + err.Error()}
	}
	h["Authorization"] = header
	return h, nil
}

// dispatcherBy is the dispatcher once the warm-up is done (waiting for it until deadline).
func (s *Shipper) dispatcherBy(deadline time.Time) *Dispatcher {
	select {
	case <-s.ready:
	default:
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		waitChan(s.ready, left)
		select {
		case <-s.ready:
		default:
			return nil
		}
	}
	if s.failed.Load() {
		return nil
	}
	return s.d
}

func (s *Shipper) shipBeforeFreeze(d *Dispatcher, rid string, deadline time.Time) {
	if rid != "" {
		d.WaitRuntimeDone(rid, deadline)
	}
	d.Flush(deadline)
}

// OnInvoke applies the flush policy to one INVOKE.
func (s *Shipper) OnInvoke(e *Event) {
	if !s.Subscribed {
		return
	}
	arrival := time.Now()
	deadline := eventDeadline(e.DeadlineMs, InvokeMargin, 3*time.Second)
	rid, _ := e.RequestID.(string)
	s.lastRID = rid
	d := s.dispatcherBy(deadline) // the cold start waits for the warm-up, records are kept meanwhile
	prev := s.prevRID
	s.prevRID = rid
	first := !s.invoked
	s.invoked = true
	if d == nil {
		return
	}
	defer func() { s.handledNs = time.Now().UnixNano() }()
	d.SetDeadline(deadline) // also wakes the sender: leftovers from before the freeze go now
	beforeFreeze := s.cfg.Flush == FlushEndOfInvoke
	if s.cfg.Flush == FlushAdaptive {
		beforeFreeze = first || !s.dense(d, prev, arrival)
	}
	if beforeFreeze {
		if rid != "" {
			d.WaitRuntimeDone(rid, deadline)
		}
		if s.cfg.Flush == FlushEndOfInvoke {
			d.Flush(deadline)
		} else {
			d.Flush(pushBudget(deadline))
		}
		return
	}
	if s.cfg.Flush == FlushAdaptive {
		d.PushSoon() // the previous invokes' lines go now, in this invoke's thawed time; next at once
	}
	// High-water mark: a burst never waits for a freeze with the buffer near full (the mark keeps
	// room for the largest recent invoke: invoke_volume.go). Held, not queued: a push in flight
	// still counts against the buffer's bound. With Loki failing the buffer stays full whatever
	// we do: pushing before next would only add the retries to every invoke; the sender keeps
	// trying in the thawed time.
	_, prevDone := d.RuntimeDoneTime(prev)
	mark := d.HighWaterMark(s.cfg.HighWaterPercent, prev == "" || prevDone)
	if held := d.HeldBytes(); held > 0 && held >= mark && !d.LokiFailing() {
		d.FlushHighWater(pushBudget(deadline), mark)
	}
}

// pushBudget is the deadline of a push before next that the user did not ask for explicitly.
func pushBudget(deadline time.Time) time.Time {
	if b := time.Now().Add(PreNextPushBudget); b.Before(deadline) {
		return b
	}
	return deadline
}

// dense: each of the last DENSE_STREAK idle gaps is at most LOKI_DENSE_GAP_MS. The idle gap is
// the time the environment sat idle before this INVOKE: from the previous invoke's runtimeDone,
// or from our own next if that came later (a push before the freeze is not idle time: a slow
// Loki would otherwise make back-to-back invokes look sparse forever); 0 if that runtimeDone
// has not arrived yet (we called next without it).
func (s *Shipper) dense(d *Dispatcher, prevRID string, arrival time.Time) bool {
	var gap int64
	if t, ok := d.RuntimeDoneTime(prevRID); ok && prevRID != "" {
		gap = max(0, (arrival.UnixNano()-max(t, s.handledNs))/1e6)
	}
	s.gaps = append(s.gaps, gap)
	if len(s.gaps) > ev.DENSE_STREAK {
		s.gaps = s.gaps[len(s.gaps)-ev.DENSE_STREAK:]
	}
	if s.cfg.DenseGapMs == 0 || len(s.gaps) < ev.DENSE_STREAK {
		return false
	}
	for _, g := range s.gaps {
		if g > int64(s.cfg.DenseGapMs) {
			return false
		}
	}
	return true
}

// OnShutdown drains: push, wait for the last invoke's runtimeDone, push, wait for a quiet spell.
func (s *Shipper) OnShutdown(e *Event) {
	if !s.Subscribed {
		return
	}
	deadline := eventDeadline(e.DeadlineMs, ShutdownMargin, 2*time.Second)
	d := s.dispatcherBy(deadline)
	if d == nil {
		s.listener.Close()
		return
	}
	d.StopSender(deadline)
	d.Flush(deadline)
	if s.lastRID != "" && !s.cfg.ManagedInstances {
		d.WaitRuntimeDone(s.lastRID, deadline.Add(-ShutdownDrainReserve))
	}
	quiet := time.Duration(s.cfg.BufferTimeoutMs)*time.Millisecond + ShutdownQuietSlack
	for {
		if !d.Flush(deadline) {
			break
		}
		left := time.Until(deadline)
		if left <= 0 || !d.WaitForData(min(quiet, left)) {
			break
		}
	}
	if lost := d.GiveUpRemaining(); lost > 0 {
		Warn(fmt.Sprintf("SHUTDOWN deadline reached with %d entries not shipped", lost))
	}
	drops := d.Stats().Drops
	if drops.any() {
		if time.Now().Before(deadline) {
			d.Flush(deadline) // ships the drop-report line if anything is left to report
		}
		Warn("entries lost in this environment: " + drops.String())
	}
	s.listener.Close()
}

func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	authority, path, slash := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
	}
	if slash {
		return scheme + "://" + authority + "/" + path
	}
	return scheme + "://" + authority
}

// prepared is what Run builds before register answers: the config and, when it names a Loki, a
// listening Shipper (or why there is none).
type prepared struct {
	cfg      *Config
	shipper  *Shipper
	err      error
	panicked any
}

// prepare loads the config and starts the listener. A panic is handed back to Run, which raises
// it again where it would have happened: before the config's problems (fatal) when LoadConfig
// failed, after them (not shipping logs) when the listener did.
func prepare(env map[string]string) (p prepared) {
	defer func() {
		if r := recover(); r != nil {
			p.shipper, p.panicked = nil, r
		}
	}()
	p.cfg = LoadConfig(env)
	if p.cfg.URL != "" {
		p.shipper, p.err = newListeningShipper(p.cfg, env)
	}
	return p
}

// Run is the whole life of the extension; it returns the exit code. tune (if not nil) adjusts the
// runtime; it runs while register's answer is on its way (see the comment there).
func Run(env map[string]string, name string, tune func()) (code int) {
	defer func() {
		if r := recover(); r != nil {
			Warn(fmt.Sprintf("fatal: %v", r))
			code = 1
		}
	}()
	runtimeAPI := env["AWS_LAMBDA_RUNTIME_API"]
	if runtimeAPI == "" {
		Warn("AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda; exiting")
		return 1
	}
	api := NewExtensionsAPI(runtimeAPI)
	managed := strings.TrimSpace(env[ev.AWS_LAMBDA_INITIALIZATION_TYPE]) == ev.MANAGED_INSTANCES
	events := []string{"INVOKE", "SHUTDOWN"}
	if managed {
		events = []string{"SHUTDOWN"} // Managed Instances refuse INVOKE registration (403)
	}
	// The runtime settings, the config, the dispatcher and the listener do not need the extension
	// id: they are done while register's answer is on its way, not before the request is written
	// (measured against the bench's Extensions API stub, start -> first next ~3 ms: GOMAXPROCS(1)
	// stops the world, 0.1-0.25 ms at start; config and listener 0.15-0.2 ms).
	prep := make(chan prepared, 1)
	var prepOnce sync.Once
	startPrep := func() {
		prepOnce.Do(func() {
			go func() {
				if tune != nil {
					tune()
				}
				prep <- prepare(env)
			}()
		})
	}
	if _, err := api.Register(name, events, startPrep); err != nil {
		Warn(fmt.Sprintf("fatal: %v", err)) // no Lambda to serve
		return 1
	}
	startPrep() // no-op unless the request was answered without a write being reported
	p := <-prep
	if p.cfg == nil {
		panic(p.panicked) // LoadConfig itself failed: fatal, as it was when it ran here
	}
	for _, msg := range p.cfg.Problems {
		Warn(msg)
	}
	var shipper *Shipper
	if p.cfg.URL != "" {
		func() {
			defer func() {
				if r := recover(); r != nil {
					Warn(fmt.Sprintf("not shipping logs: %v", r))
					shipper = nil
				}
			}()
			if p.panicked != nil {
				panic(p.panicked)
			}
			if p.err != nil {
				Warn(fmt.Sprintf("not shipping logs: %v", p.err))
				return
			}
			if err := p.shipper.subscribe(runtimeAPI, api.ExtensionID); err != nil {
				Warn(fmt.Sprintf("not shipping logs: %v", err))
				return
			}
			shipper = p.shipper
		}()
	}
	failures := 0
	warmedUp := false
	for {
		if shipper != nil && !warmedUp {
			// Go has no interpreter lock: the warm-up runs beside the first next, not before it.
			warmedUp = true
			shipper.StartWarmUp()
		}
		event, err := api.Next()
		if err != nil {
			failures++
			if failures >= MaxNextFailures {
				Warn(fmt.Sprintf("the Extensions API keeps failing (%v); exiting", err))
				return 1
			}
			continue
		}
		failures = 0
		kind := strings.ToUpper(event.EventType)
		done := func() (stop bool) {
			defer func() {
				if r := recover(); r != nil { // never let a bug stop the next call
					Warn(fmt.Sprintf("error handling %s: %v", kind, r))
					stop = kind == "SHUTDOWN"
				}
			}()
			switch kind {
			case "INVOKE":
				if shipper != nil {
					shipper.OnInvoke(event)
				}
			case "SHUTDOWN":
				if shipper != nil {
					shipper.OnShutdown(event)
				}
				return true
			}
			return false
		}()
		if done {
			return 0
		}
	}
}
