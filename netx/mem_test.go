package netx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
)

// memPair returns a network with a client host and a server host that runs
// the echo and sink handlers.
func memPair(t *testing.T) (*MemNetwork, Host, Host) {
	t.Helper()
	n := NewMemNetwork()
	client, err := n.NewHost("client")
	if err != nil {
		t.Fatal(err)
	}
	server, err := n.NewHost("server")
	if err != nil {
		t.Fatal(err)
	}
	server.SetStreamHandler(echoProto, echo)
	server.SetStreamHandler(sinkProto, sink)
	t.Cleanup(func() { client.Close(); server.Close() })
	return n, client, server
}

// Every memnet test runs in a synctest bubble: the bubble fails the test if
// any goroutine is still blocked at the end, which catches leaked streams
// and handlers, and proves memnet needs no real time or outside goroutines.
func TestMemRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 1000, MemBufferSize, 3*MemBufferSize + 17} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, client, server := memPair(t)
				s, err := client.NewStream(t.Context(), server.ID(), nil, echoProto)
				if err != nil {
					t.Fatal(err)
				}
				if s.RemotePeer() != "server" {
					t.Errorf("RemotePeer = %q, want server", s.RemotePeer())
				}
				data := payload(uint64(size), size)
				mustEqual(t, roundTrip(t, s, data), data)
			})
		})
	}
}

func TestMemFullDuplex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memPair(t)
		// Both ends write more than a buffer's worth before reading anything
		// back; a half-duplex or unbuffered pipe deadlocks here.
		const size = 4 * MemBufferSize
		a, b := payload(1, size), payload(2, size)
		got := make(chan []byte, 1)
		server.SetStreamHandler("/duplex", func(s Stream) {
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				if _, err := s.Write(b); err != nil {
					t.Error(err)
				}
				s.CloseWrite()
			}()
			in, _ := io.ReadAll(s)
			<-wrote // Close would cut our own write short
			s.Close()
			got <- in
		})
		s, err := client.NewStream(t.Context(), server.ID(), nil, "/duplex")
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, roundTrip(t, s, a), b)
		mustEqual(t, <-got, a)
	})
}

func TestCloseWriteGivesEOFWhileOtherDirectionWorks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memPair(t)
		server.SetStreamHandler("/rpc", func(s Stream) {
			req, err := io.ReadAll(s) // ends only on the client's CloseWrite
			if err != nil {
				s.Reset()
				return
			}
			s.Write(append([]byte("re: "), req...))
			s.Close()
		})
		s, err := client.NewStream(t.Context(), server.ID(), nil, "/rpc")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("late")); !errors.Is(err, ErrStreamClosed) {
			t.Errorf("write after CloseWrite: err = %v, want ErrStreamClosed", err)
		}
		resp, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(resp) != "re: ping" {
			t.Errorf("response %q, want %q", resp, "re: ping")
		}
		s.Close()
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrStreamClosed) {
			t.Errorf("read after Close: err = %v, want ErrStreamClosed", err)
		}
	})
}

func TestResetFailsBothSides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memPair(t)
		serverErrs := make(chan [2]error, 1)
		server.SetStreamHandler("/hang", func(s Stream) {
			defer s.Close()
			_, rerr := io.ReadAll(s) // blocks until the reset
			_, werr := s.Write([]byte("x"))
			serverErrs <- [2]error{rerr, werr}
		})
		s, err := client.NewStream(t.Context(), server.ID(), nil, "/hang")
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("buffered bytes are dropped"))
		synctest.Wait() // the handler is now blocked reading
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		for i, err := range <-serverErrs {
			if !errors.Is(err, ErrStreamReset) {
				t.Errorf("server op %d after reset: err = %v, want ErrStreamReset", i, err)
			}
		}
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Errorf("client read after reset: err = %v", err)
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, ErrStreamReset) {
			t.Errorf("client write after reset: err = %v", err)
		}
	})
}

func TestBlockedWriterReleasedWhenReaderCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memPair(t)
		server.SetStreamHandler("/reject", func(s Stream) {
			s.Read(make([]byte, 10))
			s.Close() // stop reading with most of the upload unread
		})
		s, err := client.NewStream(t.Context(), server.ID(), nil, "/reject")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write(payload(3, 3*MemBufferSize)); !errors.Is(err, ErrStreamReset) {
			t.Errorf("write into a closed reader: err = %v, want ErrStreamReset", err)
		}
	})
}

func TestMemNewStreamErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memPair(t)
		closed, cancel := context.WithCancel(t.Context())
		cancel()
		tests := []struct {
			name  string
			ctx   context.Context
			peer  PeerID
			proto string
			want  error
		}{
			{"unknown peer", t.Context(), "nobody", echoProto, ErrUnknownPeer},
			{"no handler", t.Context(), server.ID(), "/nope", ErrNoProtocol},
			{"cancelled", closed, server.ID(), echoProto, context.Canceled},
		}
		for _, tc := range tests {
			s, err := client.NewStream(tc.ctx, tc.peer, nil, tc.proto)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
			if s != nil {
				t.Errorf("%s: got a stream with the error", tc.name)
			}
		}
		server.SetStreamHandler(echoProto, nil)
		if _, err := client.NewStream(t.Context(), server.ID(), nil, echoProto); !errors.Is(err, ErrNoProtocol) {
			t.Errorf("removed handler: err = %v, want ErrNoProtocol", err)
		}
		client.Close()
		if _, err := client.NewStream(t.Context(), server.ID(), nil, sinkProto); !errors.Is(err, ErrHostClosed) {
			t.Errorf("from closed host: err = %v, want ErrHostClosed", err)
		}
	})
}

func TestHostCloseResetsStreamsAndFreesID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, client, server := memPair(t)
		s, err := client.NewStream(t.Context(), server.ID(), nil, echoProto)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		server.Close()
		if _, err := io.ReadAll(s); !errors.Is(err, ErrStreamReset) {
			t.Errorf("read after remote host closed: err = %v, want ErrStreamReset", err)
		}
		if _, err := client.NewStream(t.Context(), "server", nil, echoProto); !errors.Is(err, ErrUnknownPeer) {
			t.Errorf("dial closed host: err = %v, want ErrUnknownPeer", err)
		}
		// The peer rejoins under the same ID, as after a restart.
		again, err := n.NewHost("server")
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		again.SetStreamHandler(echoProto, echo)
		s2, err := client.NewStream(t.Context(), "server", nil, echoProto)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, roundTrip(t, s2, []byte("back")), []byte("back"))
	})
}

func TestDisconnectResetsOnlyThatPair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, client, server := memPair(t)
		third, err := n.NewHost("")
		if err != nil {
			t.Fatal(err)
		}
		defer third.Close()
		third.SetStreamHandler(echoProto, echo)

		toServer, err := client.NewStream(t.Context(), server.ID(), nil, echoProto)
		if err != nil {
			t.Fatal(err)
		}
		defer toServer.Close()
		toThird, err := client.NewStream(t.Context(), third.ID(), nil, echoProto)
		if err != nil {
			t.Fatal(err)
		}
		n.Disconnect(server.ID(), client.ID())
		if _, err := toServer.Write([]byte("x")); !errors.Is(err, ErrStreamReset) {
			t.Errorf("write across dropped link: err = %v, want ErrStreamReset", err)
		}
		mustEqual(t, roundTrip(t, toThird, []byte("still up")), []byte("still up"))
	})
}

func TestMemHostIDs(t *testing.T) {
	n := NewMemNetwork()
	a, err := n.NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.NewHost("")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() == b.ID() || a.ID() == "" {
		t.Errorf("automatic IDs %q and %q are not distinct", a.ID(), b.ID())
	}
	if _, err := n.NewHost(a.ID()); !errors.Is(err, ErrPeerIDInUse) {
		t.Errorf("duplicate ID: err = %v, want ErrPeerIDInUse", err)
	}
	if got := FullAddrs(a); len(got) != 1 || got[0] != a.Addrs()[0]+"/p2p/"+string(a.ID()) {
		t.Errorf("FullAddrs = %v", got)
	}
	a.Close()
	b.Close()
}

// TestManyConcurrentStreams runs on real goroutines (not a bubble) and
// counts goroutines by hand, for the race detector's benefit.
func TestManyConcurrentStreams(t *testing.T) {
	checkNoLeaks(t)
	n := NewMemNetwork()
	const peers, streamsPerPeer = 6, 12
	hosts := make([]Host, peers)
	for i := range hosts {
		h, err := n.NewHost("")
		if err != nil {
			t.Fatal(err)
		}
		h.SetStreamHandler(echoProto, echo)
		hosts[i] = h
	}
	var wg sync.WaitGroup
	for i, from := range hosts {
		for j := range streamsPerPeer {
			wg.Go(func() {
				to := hosts[(i+1+j%(peers-1))%peers]
				s, err := from.NewStream(context.Background(), to.ID(), nil, echoProto)
				if err != nil {
					t.Error(err)
					return
				}
				data := payload(uint64(i*100+j), 1000+j*37*1024)
				mustEqual(t, roundTrip(t, s, data), data)
			})
		}
	}
	wg.Wait()
	for _, h := range hosts {
		h.Close()
	}
}
