package admin

import (
	"container/list"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter is a listener that keeps at most max connections open, so that no number of clients
// can take the process's file descriptors (which Pebble needs for its tables, and Kafka for its
// sockets).
//
// A connection over the cap is not left waiting in the kernel's accept queue, as a blocking limiter
// (golang.org/x/net/netutil) would: behind a few hundred idle connections that queue would hold the
// liveness probe until it timed out. Instead the limiter accepts it and closes the connection that
// has been idle longest: one with no request under way, whether it never sent one, sent only part
// of its headers, or is a keep-alive connection between requests (nginx reuses idle keep-alive
// connections the same way when it runs out). Only when every connection is in the middle of a
// request is the new one closed at once. An idle flood therefore costs max descriptors and keeps
// evicting itself, while a client that sends its request promptly is served.
//
// The server reports each connection's state through http.Server.ConnState (connState): a
// connection is idle from its accept until its request's headers are read, and again after its
// response.
type connLimiter struct {
	net.Listener
	max              int
	evicted, refused prometheus.Counter

	mu   sync.Mutex
	open int
	idle list.List // of *limitedConn, least recently idle first
}

// limitedConn is one accepted connection. Its fields are guarded by the limiter's mutex.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	idle   *list.Element // in l.idle while no request is under way
	closed bool
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l}
		l.mu.Lock()
		var victim *limitedConn
		if l.open >= l.max {
			if front := l.idle.Front(); front != nil {
				victim = front.Value.(*limitedConn)
				l.forgetLocked(victim)
			}
		}
		if l.open >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			l.refused.Inc()
			continue
		}
		l.open++
		lc.idle = l.idle.PushBack(lc)
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Conn.Close()
			l.evicted.Inc()
		}
		return lc, nil
	}
}

// forgetLocked removes c from the books; the caller closes it.
func (l *connLimiter) forgetLocked(c *limitedConn) {
	c.closed = true
	l.open--
	if c.idle != nil {
		l.idle.Remove(c.idle)
		c.idle = nil
	}
}

// Close closes the connection once; the limiter may have closed it first to make room.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	if c.closed {
		c.l.mu.Unlock()
		return nil
	}
	c.l.forgetLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// connState is the http.Server's ConnState hook.
func (l *connLimiter) connState(nc net.Conn, st http.ConnState) {
	c := unwrapConn(nc)
	if c == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed {
		return
	}
	switch st {
	case http.StateNew, http.StateIdle:
		if c.idle != nil {
			l.idle.MoveToBack(c.idle)
		} else {
			c.idle = l.idle.PushBack(c)
		}
	case http.StateActive, http.StateHijacked:
		if c.idle != nil {
			l.idle.Remove(c.idle)
			c.idle = nil
		}
	}
}

// openConns returns the number of connections held open.
func (l *connLimiter) openConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// unwrapConn finds the limiter's connection under a *tls.Conn (the server sees the TLS connection
// the TLS listener made of it).
func unwrapConn(nc net.Conn) *limitedConn {
	for nc != nil {
		switch c := nc.(type) {
		case *limitedConn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}
