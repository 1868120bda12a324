package netx

import (
	"io"
	"testing"
)

const benchWrite = 256 << 10 // one default-size chunk per write

// benchStream measures one-way throughput on a single stream from client to
// a discarding server, 256 KiB per write.
func benchStream(b *testing.B, client, server Host, addrs []string) {
	done := make(chan struct{})
	server.SetStreamHandler("/bench", func(s Stream) {
		io.Copy(io.Discard, s)
		s.Write([]byte{1})
		s.Close()
		close(done)
	})
	s, err := client.NewStream(b.Context(), server.ID(), addrs, "/bench")
	if err != nil {
		b.Fatal(err)
	}
	buf := payload(1, benchWrite)
	b.SetBytes(benchWrite)
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	s.Close()
	<-done
}

func BenchmarkMemStream(b *testing.B) {
	n := NewMemNetwork()
	client, _ := n.NewHost("")
	server, _ := n.NewHost("")
	defer client.Close()
	defer server.Close()
	benchStream(b, client, server, nil)
}

func BenchmarkLibp2pStream(b *testing.B) {
	for _, tc := range []struct{ name, marker string }{{"tcp", "/tcp/"}, {"quic", "/quic-v1"}} {
		b.Run(tc.name, func(b *testing.B) {
			client, server := newLoopbackHost(b), newLoopbackHost(b)
			benchStream(b, client, server, []string{addrWith(b, server, tc.marker)})
		})
	}
}
