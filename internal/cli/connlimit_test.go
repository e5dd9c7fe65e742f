package cli

import (
	"net"
	"testing"
	"testing/synctest"
)

// pipeListener hands out the server ends of net.Pipe connections: no real
// network, so a synctest bubble can tell a blocked Accept for certain.
type pipeListener struct{ conns chan net.Conn }

func (p *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-p.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (p *pipeListener) Close() error   { return nil }
func (p *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

func (p *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	p.conns <- server
	return client
}

func TestConnLimitWaitsForAFreeSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pl := &pipeListener{conns: make(chan net.Conn, 8)}
		ln := limitConns(pl, 2)
		var open []net.Conn
		for range 2 {
			pl.dial()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
		}
		pl.dial()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		synctest.Wait()
		select {
		case <-accepted:
			t.Fatal("a third connection was accepted with two open and a limit of two")
		default:
		}
		open[0].Close()
		open[0].Close() // a second Close must not free a second slot
		synctest.Wait()
		third := <-accepted
		if third == nil {
			t.Fatal("no connection after one closed")
		}
		pl.dial()
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		synctest.Wait()
		select {
		case <-accepted:
			t.Fatal("closing one connection twice freed two slots")
		default:
		}
		ln.Close()
		if c := <-accepted; c != nil {
			t.Fatal("Accept on a closed listener returned a connection")
		}
		open[1].Close()
		third.Close()
	})
}
