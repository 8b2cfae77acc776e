package ext

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The client of the Lambda Runtime API (register, subscribe, next): HTTP/1.1 written by hand
// over kept-alive connections. net/http's first request costs about 0.26 ms more on the init
// path (process start -> register against the bench's stub: 2.48 vs 2.22 ms, same binary
// size), and init is where the native build must stay under 0.3x the Python build's ~10 ms.
// The Runtime API is local and answers with Content-Length (chunked is read too); one request
// per connection at a time, idle connections kept for the next call (a blocking next and a
// subscribe may overlap: each gets its own connection).

// maxRuntimeBody bounds an answer's body (an event is a few hundred bytes).
const maxRuntimeBody = 4 << 20

// maxRuntimeHead bounds an answer's status line and headers.
const maxRuntimeHead = 64 << 10

type rtConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// rtClient holds the idle connections to one Runtime API address.
type rtClient struct {
	addr string
	mu   sync.Mutex
	idle []*rtConn
}

var rtClients sync.Map // address -> *rtClient

// runtimeClient is the client of the Runtime API at addr ("host:port"), one per address.
func runtimeClient(addr string) *rtClient {
	if c, ok := rtClients.Load(addr); ok {
		return c.(*rtClient)
	}
	c, _ := rtClients.LoadOrStore(addr, &rtClient{addr: addr})
	return c.(*rtClient)
}

func (c *rtClient) get() (*rtConn, bool, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return rc, true, nil
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	conn, err := dialQuickAck(ctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	return &rtConn{conn: conn, br: bufio.NewReaderSize(conn, 4096)}, false, nil
}

func (c *rtClient) put(rc *rtConn) {
	c.mu.Lock()
	c.idle = append(c.idle, rc)
	c.mu.Unlock()
}

// do sends one request and reads its answer. timeout 0: none (next blocks until an event).
// wrote, if not nil, is called once the request is written (it must not block).
func (c *rtClient) do(method, path string, headers map[string]string, body []byte, timeout time.Duration,
	wrote func()) (*Response, error) {
	req := runtimeRequest(method, c.addr, path, headers, body)
	for attempt := 0; ; attempt++ {
		rc, reused, err := c.get()
		if err != nil {
			return nil, runtimeErr(err)
		}
		var deadline time.Time
		if timeout > 0 {
			deadline = time.Now().Add(timeout)
		}
		_ = rc.conn.SetDeadline(deadline)
		var resp *Response
		keep := false
		if _, err = rc.conn.Write(req); err == nil {
			if wrote != nil {
				wrote()
				wrote = nil
			}
			resp, keep, err = readRuntimeResponse(rc.br, method)
		}
		if err == nil {
			if keep {
				c.put(rc)
			} else {
				_ = rc.conn.Close()
			}
			return resp, nil
		}
		_ = rc.conn.Close()
		// A kept connection the server closed while it was idle fails before any answer: once
		// more on a fresh one (what net/http does too).
		if !reused || attempt > 0 || !staleConnErr(err) {
			return nil, runtimeErr(err)
		}
	}
}

// runtimeRequest is the request's bytes (headers in a stable order).
func runtimeRequest(method, host, path string, headers map[string]string, body []byte) []byte {
	b := make([]byte, 0, 256+len(body))
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, headers[k]...)
		b = append(b, "\r\n"...)
	}
	if body != nil || method == "POST" || method == "PUT" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// readRuntimeResponse reads one answer; keep tells whether the connection can carry another.
func readRuntimeResponse(br *bufio.Reader, method string) (*Response, bool, error) {
	budget := maxRuntimeHead
	line, err := readLine(br, &budget)
	if err != nil {
		return nil, false, err
	}
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' {
		return nil, false, fmt.Errorf("malformed status line %q", truncate(line, 60))
	}
	status, err := strconv.Atoi(line[9:12])
	if err != nil {
		return nil, false, fmt.Errorf("malformed status line %q", truncate(line, 60))
	}
	keep := line[7] == '1'
	headers := map[string]string{}
	for {
		h, err := readLine(br, &budget)
		if err != nil {
			return nil, false, err
		}
		if h == "" {
			break
		}
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, seen := headers[k]; !seen {
			headers[k] = strings.TrimSpace(v)
		}
	}
	switch strings.ToLower(headers["connection"]) {
	case "close":
		keep = false
	case "keep-alive":
		keep = true
	}
	var body []byte
	switch {
	case method == "HEAD" || status/100 == 1 || status == 204 || status == 304:
	case strings.Contains(strings.ToLower(headers["transfer-encoding"]), "chunked"):
		body, err = readChunked(br)
	case headers["content-length"] != "":
		n, perr := strconv.Atoi(headers["content-length"])
		if perr != nil || n < 0 || n > maxRuntimeBody {
			return nil, false, fmt.Errorf("bad Content-Length %q", truncate(headers["content-length"], 40))
		}
		body = make([]byte, n)
		_, err = io.ReadFull(br, body)
	default: // the body runs to the end of the connection
		body, err = io.ReadAll(io.LimitReader(br, maxRuntimeBody))
		keep = false
	}
	if err != nil {
		return nil, false, err
	}
	return &Response{Status: status, Headers: headers, Body: body}, keep, nil
}

// readLine reads one CRLF- (or LF-) terminated line, charging its length to budget.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var sb strings.Builder
	for {
		frag, err := br.ReadSlice('\n')
		*budget -= len(frag)
		if *budget < 0 {
			return "", errors.New("answer head too long")
		}
		sb.Write(frag)
		if err == nil {
			break
		}
		if errors.Is(err, io.EOF) {
			if sb.Len() == 0 {
				return "", io.EOF
			}
			return "", io.ErrUnexpectedEOF
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err // a timeout, a reset
		}
	}
	return strings.TrimRight(sb.String(), "\r\n"), nil
}

// readChunked reads a chunked body and its trailers.
func readChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	budget := maxRuntimeHead
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			return nil, err
		}
		sizeText, _, _ := strings.Cut(line, ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
		if err != nil || size < 0 || int64(len(body))+size > maxRuntimeBody {
			return nil, fmt.Errorf("bad chunk size %q", truncate(line, 40))
		}
		if size == 0 {
			for { // trailers, up to the empty line
				t, err := readLine(br, &budget)
				if err != nil {
					return nil, err
				}
				if t == "" {
					return body, nil
				}
			}
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		if crlf, err := readLine(br, &budget); err != nil || crlf != "" {
			return nil, errors.New("chunk not followed by CRLF")
		}
	}
}

// staleConnErr: the server closed the connection before answering anything (not a partial answer).
func staleConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// runtimeErr words a transport error as net/http's callers used to see it.
func runtimeErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("timed out")
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
