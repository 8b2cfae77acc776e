package ext

import (
	"context"
	"net"
	"syscall"
	"time"
)

// Delayed ACKs against a peer that writes its answer's head and body in two small writes (Nagle
// on its side: the body waits for our ACK of the head) cost 40 ms per exchange on Linux; measured
// against the in-test Lambda API fake, 42 ms of a 52 ms init went to the subscribe answer alone.
// TCP_QUICKACK is not sticky, so it is set again before every read of the connection (one
// setsockopt, ~1 µs, on a connection that carries a handful of requests per invoke).
type quickAckConn struct {
	net.Conn
	raw syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	if c.raw != nil {
		_ = c.raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return c.Conn.Read(p)
}

// dialQuickAck dials TCP with TCP_NODELAY (Go's default) and quick ACKs on every read.
func dialQuickAck(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	qc := &quickAckConn{Conn: conn}
	if tc, ok := conn.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			qc.raw = raw
		}
	}
	return qc, nil
}
