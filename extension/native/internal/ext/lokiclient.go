package ext

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"

	ev "lokitelemetry/internal/envvars"
)

// UserAgent of every push, the same in both builds.
const UserAgent = "loki-telemetry-extension/" + ev.EXTENSION_VERSION

// maxResponseBody: only the start of an answer is kept (messages quote 300 bytes of it).
const maxResponseBody = 64 * 1024

// LokiClient sends one push per Send over one kept-alive connection (http or https).
type LokiClient struct {
	url     string
	headers http.Header
	client  *http.Client
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // the extension talks to Loki directly, as the Python build does
		DialContext:         dialQuickAck,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
}

// NewLokiClient: userinfo in the URL becomes basic auth; extra headers (auth from a secret,
// X-Scope-OrgID) win over it.
func NewLokiClient(rawURL string, extra map[string]string) (*LokiClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Encoding", "gzip")
	h.Set("User-Agent", UserAgent)
	if u.User != nil {
		pw, _ := u.User.Password()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)))
		u.User = nil
	}
	for k, v := range extra {
		h.Set(k, v)
	}
	return &LokiClient{url: u.String(), headers: h, client: &http.Client{Transport: newTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Send POSTs one gzip'd body within timeout in total (connect, TLS, send, read). A kept-alive
// connection may have died while the environment was frozen: a failure on a reused connection
// is retried once on a fresh one if time is left (Loki de-duplicates identical entries).
func (c *LokiClient) Send(body []byte, timeout time.Duration) (*Response, error) {
	deadline := time.Now().Add(timeout)
	resp, reused, err := c.sendOnce(body, deadline)
	if err != nil && reused && time.Until(deadline) > 0 {
		c.client.CloseIdleConnections()
		resp, _, err = c.sendOnce(body, deadline)
	}
	return resp, err
}

func (c *LokiClient) sendOnce(body []byte, deadline time.Time) (*Response, bool, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	reused := false
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header = c.headers.Clone()
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, reused, cleanErr(err)
	}
	return readResponse(resp), reused, nil
}

func readResponse(resp *http.Response) *Response {
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // drained: the connection is reused
	h := make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		if len(v) > 0 {
			h[strings.ToLower(k)] = v[0]
		}
	}
	return &Response{Status: resp.StatusCode, Headers: h, Body: data}
}

// cleanErr drops net/url's `Post "<url>": ` wrapper (the messages name the URL themselves).
func cleanErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}
