package manifest

import (
	"errors"
	"strings"
	"testing"
)

// lineBreakVariants returns s with line breaks inside it, which Go's base64
// decoders skip and a strict identifier parser must refuse.
func lineBreakVariants(s string) []string {
	return []string{
		s[:20] + "\n" + s[20:],
		s[:20] + "\r\n" + s[20:],
		s[:21] + "\r" + s[21:],
		s[:42] + "\n",
	}
}

func TestIdentifiersRejectLineBreaks(t *testing.T) {
	pub := PublicOf(testKey(1))
	ch := ChannelIDOf(pub, "news")
	for _, s := range lineBreakVariants(ch.String()) {
		if got, err := ParseChannelID(s); !errors.Is(err, ErrBadChannelID) {
			t.Errorf("ParseChannelID(%q) = %v, %v; want ErrBadChannelID", s, got, err)
		}
	}
	for _, s := range lineBreakVariants(pub.String()) {
		if got, err := ParsePublicKey(s); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%q) = %v, %v; want ErrBadKey", s, got, err)
		}
	}
	// A key read from a file keeps its final newline: space around is fine.
	if got, err := ParsePublicKey(pub.String() + "\n"); err != nil || got != pub {
		t.Errorf("ParsePublicKey(key + newline) = %v, %v", got, err)
	}
}

func FuzzParseChannelID(f *testing.F) {
	id := ChannelIDOf(PublicOf(testKey(1)), "news").String()
	f.Add(id)
	for _, s := range lineBreakVariants(id) {
		f.Add(s) // Go's base64 skips CR/LF: none of these may parse
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseChannelID(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("parse → print changed %q to %q", s, c.String())
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	key := PublicOf(testKey(1)).String()
	f.Add(key)
	f.Add(key + "\n")
	for _, s := range lineBreakVariants(key) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		// Only the space around a key is ignored, so printing it gives back
		// the input without that space.
		if k.String() != strings.TrimSpace(s) {
			t.Fatalf("parse → print changed %q to %q", s, k.String())
		}
	})
}
