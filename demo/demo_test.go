package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Config{Size: 2 << 20, Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"content ID", "published", "fetched"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
