package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoSwarm(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Config{Size: 4 << 20, Peers: 5, Out: &out, Memory: true}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"content ID", "published", "offload ratio", "origin egress"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "\n     ") < 5 && strings.Count(s, "  ") < 5 {
		t.Errorf("demo output lacks the per-peer table:\n%s", s)
	}
}
