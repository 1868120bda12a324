package discovery

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
)

// AppendJSON appends r encoded exactly as encoding/json encodes it (HTML-
// safe escaping included), so the tracker can answer from a reused buffer
// without reflection: the response's shape is fixed, and it is the largest
// part of an announce's cost. FuzzAppendJSON checks the two agree byte for
// byte. Values the fast path does not cover (a float in exponent form, a
// string needing escapes, a policy that encoding/json would not copy as it
// is) take encoding/json's own code. A policy in canonical encoding is
// copied: the tracker answers the operator's bytes without encoding them.
func (r *AnnounceResponse) AppendJSON(b []byte) []byte {
	if !plainFloat(r.IntervalS) || !plainFloat(r.MinIntervalS) || (r.Policy != nil && !verbatimJSON(r.Policy)) {
		return appendMarshal(b, r)
	}
	b = append(b, `{"interval_s":`...)
	b = strconv.AppendFloat(b, r.IntervalS, 'f', -1, 64)
	if r.MinIntervalS != 0 {
		b = append(b, `,"min_interval_s":`...)
		b = strconv.AppendFloat(b, r.MinIntervalS, 'f', -1, 64)
	}
	b = append(b, `,"peers":`...)
	if r.Peers == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Peers {
			if i > 0 {
				b = append(b, ',')
			}
			if p := &r.Peers[i]; p.Encoded != nil {
				b = append(b, p.Encoded...)
			} else {
				b = p.appendJSON(b)
			}
		}
		b = append(b, ']')
	}
	if r.Session != nil {
		b = append(b, `,"session":{"exp":`...)
		b = strconv.AppendInt(b, r.Session.Exp, 10)
		b = append(b, `,"key":`...)
		if r.Session.Key == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, r.Session.Key)
			b = append(b, '"')
		}
		if len(r.Session.Grant) > 0 {
			b = append(b, `,"grant":"`...)
			b = base64.StdEncoding.AppendEncode(b, r.Session.Grant)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	if len(r.Policy) > 0 {
		b = append(b, `,"policy":`...)
		b = append(b, r.Policy...)
	}
	return append(b, '}')
}

// verbatimJSON reports whether encoding/json writes raw, a json.RawMessage,
// exactly as it is: valid JSON of printable ASCII with no whitespace and
// none of the HTML-escaped '<', '>', '&'. A policy's canonical encoding
// always is.
func verbatimJSON(raw []byte) bool {
	for _, c := range raw {
		if c <= ' ' || c > '~' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return json.Valid(raw)
}

// AppendJSON appends p as encoding/json writes it (Encoded ignored).
func (p *PeerInfo) AppendJSON(b []byte) []byte { return p.appendJSON(b) }

func (p *PeerInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"peer":`...)
	b = appendString(b, p.Peer)
	b = append(b, `,"addrs":`...)
	if p.Addrs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range p.Addrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, a)
		}
		b = append(b, ']')
	}
	if p.Region != "" {
		b = append(b, `,"region":`...)
		b = appendString(b, p.Region)
	}
	if p.Seed {
		b = append(b, `,"seed":true`...)
	}
	return append(b, '}')
}

// plainFloat reports whether encoding/json writes f in 'f' format, the one
// AppendJSON writes itself.
func plainFloat(f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return false
	}
	a := math.Abs(f)
	return a == 0 || a >= 1e-6 && a < 1e21
}

// appendString quotes s as encoding/json does. Peer IDs, multiaddrs and
// regions are printable ASCII without characters JSON or HTML escape, so
// they are copied; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return appendMarshal(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshal(b []byte, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil { // NaN or ±Inf: no tracker sends them; keep the output valid JSON
		return append(b, "null"...)
	}
	return append(b, out...)
}

// plainByte marks the bytes encoding/json copies into a string as they are:
// printable ASCII but for '"', '\\' and the HTML-escaped '<', '>', '&'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
