package ext

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Lambda Extensions API (extensions_api.py) and Telemetry API (telemetry_api.py).
const (
	ExtensionsAPIVersion = "2020-01-01"
	NameHeader           = "Lambda-Extension-Name"
	IDHeader             = "Lambda-Extension-Identifier"
	TelemetryAPIVersion  = "2022-07-01"
	// TelemetrySchema 2025-01-29 is what Managed Instances need; it is backward compatible with
	// classic functions, so every mode uses it.
	TelemetrySchema = "2025-01-29"
	// ListenerHost is the sandbox's own name for itself; Lambda resolves it.
	ListenerHost = "sandbox.localdomain"
	callTimeout  = 5 * time.Second
)

// ExtensionsAPI is a client of the Extensions API.
type ExtensionsAPI struct {
	rt          *rtClient
	base        string // the path prefix
	ExtensionID string
}

// NewExtensionsAPI for AWS_LAMBDA_RUNTIME_API ("host:port").
func NewExtensionsAPI(runtimeAPI string) *ExtensionsAPI {
	return &ExtensionsAPI{rt: runtimeClient(runtimeAPI), base: "/" + ExtensionsAPIVersion + "/extension"}
}

func call(c *http.Client, method, url string, headers map[string]string, body []byte) (*Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, cleanErr(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	h := map[string]string{}
	for k, v := range resp.Header {
		if len(v) > 0 {
			h[strings.ToLower(k)] = v[0]
		}
	}
	return &Response{Status: resp.StatusCode, Headers: h, Body: data}, nil
}

// head is the start of a body as Python shows bytes (b'...'), as in the Python build's messages.
func head(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return "b" + pyRepr(string(b))
}

// TelemetryAPIError: the subscription was refused (named as in the Python build's message).
type TelemetryAPIError struct{ msg string }

func (e *TelemetryAPIError) Error() string { return "TelemetryAPIError: " + e.msg }

// RegisterBody is json.Marshal(map[string][]string{"events": events}), written by hand for event
// names that need no escaping: the first json.Marshal builds its reflection encoders, ~0.1 ms
// on the init path (measured start -> register against the bench's stub).
func RegisterBody(events []string) []byte {
	if events == nil {
		return registerBodyJSON(events) // null, not []
	}
	b := []byte(`{"events":[`)
	for i, e := range events {
		if !plainName(e) {
			return registerBodyJSON(events)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, e...)
		b = append(b, '"')
	}
	return append(b, "]}"...)
}

// registerBodyJSON is the general path (and the reference the fast one is tested against).
func registerBodyJSON(events []string) []byte {
	body, _ := json.Marshal(map[string][]string{"events": events})
	return body
}

// plainName: only letters, digits and '_' (nothing JSON would escape).
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Register for the given events; keeps and returns the extension id. whileWaiting (if not nil)
// is called once the request is on the wire, so that work which does not need the id overlaps
// the round trip instead of delaying the request. It must not block (it starts a goroutine).
func (a *ExtensionsAPI) Register(name string, events []string, whileWaiting func()) (string, error) {
	resp, err := a.rt.do(http.MethodPost, a.base+"/register",
		map[string]string{NameHeader: name, "Content-Type": "application/json"}, RegisterBody(events), callTimeout,
		whileWaiting)
	if err != nil {
		return "", err
	}
	id := resp.Headers[strings.ToLower(IDHeader)]
	if resp.Status != 200 || id == "" {
		return "", fmt.Errorf("register answered %d: %s", resp.Status, head(resp.Body, 200))
	}
	a.ExtensionID = id
	return id, nil
}

// Event is what next returns.
type Event struct {
	EventType  string `json:"eventType"`
	DeadlineMs any    `json:"deadlineMs"`
	RequestID  any    `json:"requestId"`
}

// Next blocks until the next INVOKE or SHUTDOWN event.
func (a *ExtensionsAPI) Next() (*Event, error) {
	resp, err := a.rt.do(http.MethodGet, a.base+"/event/next", map[string]string{IDHeader: a.ExtensionID}, nil, 0, nil)
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("next answered %d: %s", resp.Status, head(resp.Body, 200))
	}
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("next returned a non-object event: %s", head(resp.Body, 200))
	}
	return &ev, nil
}

// SubscribeBody is the subscription request.
func SubscribeBody(types []string, port, maxItems, maxBytes, timeoutMs int) []byte {
	quoted := make([]string, len(types))
	for i, t := range types {
		quoted[i] = strconv.Quote(t)
	}
	return []byte(fmt.Sprintf(`{"schemaVersion": "%s", "types": [%s], "buffering": {"maxItems": %d, "maxBytes": %d, "timeoutMs": %d}, "destination": {"protocol": "HTTP", "URI": "http://%s:%d"}}`,
		TelemetrySchema, strings.Join(quoted, ", "), maxItems, maxBytes, timeoutMs, ListenerHost, port))
}

// ErrTelemetryUnsupported: subscribe answered 202 (a local emulator without telemetry support).
var ErrTelemetryUnsupported = errors.New("the Telemetry API is not supported here (subscribe answered 202)")

// Subscribe to the Telemetry API.
func Subscribe(runtimeAPI, extensionID string, body []byte) error {
	resp, err := runtimeClient(runtimeAPI).do(http.MethodPut, "/"+TelemetryAPIVersion+"/telemetry",
		map[string]string{IDHeader: extensionID, "Content-Type": "application/json"}, body, callTimeout, nil)
	if err != nil {
		return err
	}
	switch resp.Status {
	case 200:
		return nil
	case 202:
		return ErrTelemetryUnsupported
	}
	return &TelemetryAPIError{fmt.Sprintf("telemetry subscribe answered %d: %s", resp.Status, head(resp.Body, 300))}
}

// Listener is the Telemetry API destination: it answers 200 at once, then hands the body on.
// It never writes to stdout/stderr (that would come back as extension records).
type Listener struct {
	Port   int
	ln     net.Listener
	server *http.Server
}

// StartListener binds 0.0.0.0 on an ephemeral port and serves.
func StartListener(sink func([]byte)) (*Listener, error) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { _ = recover() }()
		var body []byte
		var err error
		if n := r.ContentLength; n > 0 && n <= 16<<20 {
			body = make([]byte, n) // one allocation, not ReadAll's doublings (a delivery is up to 1 MiB)
			_, err = io.ReadFull(r.Body, body)
		} else {
			body, err = io.ReadAll(r.Body)
		}
		if err != nil {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Answer first: Lambda waits for us, and a slow answer loses records.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if r.Method == http.MethodPost && len(body) > 0 {
			sink(body)
		}
	})
	s := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 0}
	l := &Listener{Port: ln.Addr().(*net.TCPAddr).Port, ln: ln, server: s}
	go func() {
		defer func() { _ = recover() }()
		_ = s.Serve(ln)
	}()
	return l, nil
}

// Close stops accepting deliveries.
func (l *Listener) Close() { _ = l.server.Close() }
