package layout

import (
	"testing"

	"github.com/shoal-cdn/shoal/core"
)

func TestIsImmutable(t *testing.T) {
	h := core.SumSHA256([]byte("x"))
	id := core.ContentID(h)
	for _, tc := range []struct {
		path string
		want bool
	}{
		{ManifestPath(id), true},
		{"/" + ManifestPath(id), true},
		{HashLayerPath(h), true},
		{RootPagePath(h), true},
		{"roots/nope", false},
		{ChunkPath(h), true},
		{"chunks/00/" + h.String(), h.String()[:2] == "00"},
		{"chunks/" + h.String(), false},
		{"manifests/nope", false},
		{"index.html", false},
		{"channels/x/latest", false},
	} {
		if got := IsImmutable(tc.path); got != tc.want {
			t.Errorf("IsImmutable(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
