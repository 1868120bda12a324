package media

import (
	"fmt"
	"strconv"
	"strings"
)

// Attr is one attribute of an HLS attribute list. Quoted tells whether the
// value was a quoted-string, so it is written back the same way.
type Attr struct {
	Key    string
	Value  string
	Quoted bool
}

func (a Attr) String() string {
	if a.Quoted {
		return a.Key + `="` + a.Value + `"`
	}
	return a.Key + "=" + a.Value
}

// parseAttrs parses an attribute list (RFC 8216 section 4.2).
func parseAttrs(s string) ([]Attr, error) {
	var out []Attr
	seen := map[string]bool{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("attribute list %q: expected NAME=VALUE", s)
		}
		a := Attr{Key: s[:eq]}
		for i := 0; i < len(a.Key); i++ {
			c := a.Key[i]
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return nil, fmt.Errorf("attribute name %q: only A-Z, 0-9 and '-' are allowed", a.Key)
			}
		}
		if seen[a.Key] {
			return nil, fmt.Errorf("attribute %s appears twice", a.Key)
		}
		seen[a.Key] = true
		s = s[eq+1:]
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("attribute %s: unterminated quoted string", a.Key)
			}
			a.Value, a.Quoted = s[1:1+end], true
			s = s[end+2:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			a.Value = s[:end]
			s = s[end:]
			if a.Value == "" || strings.ContainsAny(a.Value, "\" \t") {
				return nil, fmt.Errorf("attribute %s: bad unquoted value %q", a.Key, a.Value)
			}
		}
		if !printable(a.Value) {
			return nil, fmt.Errorf("attribute %s: value is not printable", a.Key)
		}
		out = append(out, a)
		if s != "" {
			if s[0] != ',' || len(s) == 1 {
				return nil, fmt.Errorf("attribute %s: expected ',' and another attribute after the value", a.Key)
			}
			s = s[1:]
		}
	}
	return out, nil
}

// attrSet gives typed access to a parsed attribute list; take removes what
// it reads so that the rest can be kept as Other.
type attrSet struct{ attrs []Attr }

func (s *attrSet) take(key string) (Attr, bool) {
	for i, a := range s.attrs {
		if a.Key == key {
			s.attrs = append(s.attrs[:i:i], s.attrs[i+1:]...)
			return a, true
		}
	}
	return Attr{}, false
}

func (s *attrSet) quoted(key string) (string, bool, error) {
	a, ok := s.take(key)
	if ok && !a.Quoted {
		return "", false, fmt.Errorf("attribute %s must be a quoted string", key)
	}
	return a.Value, ok, nil
}

func (s *attrSet) enum(key string) (string, bool, error) {
	a, ok := s.take(key)
	if ok && a.Quoted {
		return "", false, fmt.Errorf("attribute %s must not be quoted", key)
	}
	return a.Value, ok, nil
}

func (s *attrSet) integer(key string) (int64, bool, error) {
	v, ok, err := s.enum(key)
	if !ok || err != nil {
		return 0, ok, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || !allDigits(v) {
		return 0, false, fmt.Errorf("attribute %s: %q is not a decimal integer", key, v)
	}
	return n, true, nil
}

// printable reports whether s is printable ASCII or UTF-8 without control
// characters, so it can be written back on one line.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
