package ext

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A Runtime API stand-in built on net/http's server: what the hand-written client must speak.
func runtimeServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestRuntimeClientRegisterSubscribeNextOnOneConnection(t *testing.T) {
	srv, conns := runtimeServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.Method + " " + r.URL.Path {
		case "POST /2020-01-01/extension/register":
			if r.Header.Get(NameHeader) != "ext" || string(body) != `{"events":["INVOKE","SHUTDOWN"]}` {
				t.Errorf("register: %v %q", r.Header, body)
			}
			w.Header().Set(IDHeader, "id-1")
			_, _ = w.Write([]byte(`{"functionName":"f"}`))
		case "PUT /2022-07-01/telemetry":
			if r.Header.Get(IDHeader) != "id-1" || !strings.Contains(string(body), `"types"`) {
				t.Errorf("subscribe: %v %q", r.Header, body)
			}
			_, _ = w.Write([]byte("OK"))
		case "GET /2020-01-01/extension/event/next":
			if r.Header.Get(IDHeader) != "id-1" || len(body) != 0 {
				t.Errorf("next: %v %q", r.Header, body)
			}
			// chunked (no Content-Length, flushed in two parts)
			_, _ = w.Write([]byte(`{"eventType":"INVOKE",`))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(`"requestId":"r1","deadlineMs":1}`))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	})
	addr := strings.TrimPrefix(srv.URL, "http://")
	rtClients.Delete(addr)
	api := NewExtensionsAPI(addr)
	wrote := 0
	id, err := api.Register("ext", []string{"INVOKE", "SHUTDOWN"}, func() { wrote++ })
	if err != nil || id != "id-1" || wrote != 1 {
		t.Fatalf("register: %q %v, wrote called %d times", id, err, wrote)
	}
	if err := Subscribe(addr, id, SubscribeBody([]string{"platform"}, 1234, 1000, 262144, 25)); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	for i := 0; i < 3; i++ {
		ev, err := api.Next()
		if err != nil || ev.EventType != "INVOKE" || ev.RequestID != "r1" {
			t.Fatalf("next: %+v %v", ev, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential calls, want 1 (keep-alive)", n)
	}
}

func TestRuntimeClientRetriesAConnectionClosedWhileIdle(t *testing.T) {
	var calls atomic.Int32
	srv, conns := runtimeServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set(IDHeader, "id-1")
	})
	addr := strings.TrimPrefix(srv.URL, "http://")
	rtClients.Delete(addr)
	api := NewExtensionsAPI(addr)
	if _, err := api.Register("ext", nil, nil); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // the kept connection is now dead
	if _, err := api.Register("ext", nil, nil); err != nil {
		t.Fatalf("a stale kept connection must be replaced, not reported: %v", err)
	}
	if calls.Load() != 2 || conns.Load() != 2 {
		t.Fatalf("calls %d, connections %d; want 2 and 2", calls.Load(), conns.Load())
	}
}

func TestRuntimeClientErrorsAndTimeouts(t *testing.T) {
	srv, _ := runtimeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/2020-01-01/extension/register":
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"errorType":"Forbidden"}`))
		case "/2022-07-01/telemetry":
			time.Sleep(300 * time.Millisecond)
		}
	})
	addr := strings.TrimPrefix(srv.URL, "http://")
	rtClients.Delete(addr)
	_, err := NewExtensionsAPI(addr).Register("ext", []string{"INVOKE"}, nil)
	if err == nil || err.Error() != `register answered 403: b'{"errorType":"Forbidden"}'` {
		t.Fatalf("register error: %v", err)
	}
	c := runtimeClient(addr)
	_, err = c.do(http.MethodPut, "/2022-07-01/telemetry", nil, []byte("{}"), 50*time.Millisecond, nil)
	if err == nil || err.Error() != "timed out" {
		t.Fatalf("timeout: %v", err)
	}
	if _, err := NewExtensionsAPI("127.0.0.1:1").Register("ext", nil, nil); err == nil {
		t.Fatal("nothing listens on port 1: want an error")
	}
}

func TestReadRuntimeResponseShapes(t *testing.T) {
	for _, tc := range []struct {
		raw, body string
		status    int
		keep      bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "hi", 200, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nhi\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n", "hi!", 200, true},
		{"HTTP/1.1 204 No Content\r\n\r\n", "", 204, true},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", "x", 200, false},
		{"HTTP/1.0 200 OK\r\n\r\nto the end", "to the end", 200, false},
		{"HTTP/1.1 500 Oops\nContent-Length: 0\n\n", "", 500, true},
	} {
		resp, keep, err := readRuntimeResponse(bufio.NewReader(strings.NewReader(tc.raw)), "GET")
		if err != nil || resp.Status != tc.status || string(resp.Body) != tc.body || keep != tc.keep {
			t.Errorf("%q: %+v keep=%v err=%v", tc.raw, resp, keep, err)
		}
	}
	for _, bad := range []string{"", "SPDY/3 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"} {
		if _, _, err := readRuntimeResponse(bufio.NewReader(strings.NewReader(bad)), "GET"); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
