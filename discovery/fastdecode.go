package discovery

import (
	"encoding/base64"
	"math"

	"github.com/shoal-cdn/shoal/core"
)

// decodeAnnounceFast reads an announce body of the plain shape peers send —
// one object of known fields, each at most once, in their JSON names, with
// strings free of escapes, integers without fraction or exponent, addresses
// as an array of strings and the signature, MAC and grant as standard base64 —
// without reflection. It gives up (ok false) on anything else: an unknown
// or repeated field, a null, an escape, another number form, a content ID
// that does not parse, trailing data. The caller then decodes the body with
// encoding/json, whose answer (and error) is the reference: whatever this
// accepts, encoding/json decodes to the same request (FuzzDecodeAnnounceFast).
func decodeAnnounceFast(b []byte) (r AnnounceRequest, ok bool) {
	p := fastParser{b: b}
	if !p.byte('{') {
		return r, false
	}
	var seen uint32
	if p.peek() == '}' {
		return r, false // no content: the general path names the missing field
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return r, false
		}
		bit, ok := fieldBit(key)
		if !ok || seen&bit != 0 {
			return r, false
		}
		seen |= bit
		switch bit {
		case fContent:
			s, ok := p.str()
			if !ok {
				return r, false
			}
			id, err := core.ParseContentID(string(s))
			if err != nil {
				return r, false
			}
			r.Content = id
		case fPeer:
			s, ok := p.str()
			if !ok {
				return r, false
			}
			r.Peer = string(s)
		case fAddrs:
			if !p.byte('[') {
				return r, false
			}
			r.Addrs = []string{}
			if p.peek() == ']' {
				p.i++
			} else {
				for {
					s, ok := p.str()
					if !ok {
						return r, false
					}
					r.Addrs = append(r.Addrs, string(s))
					if p.byte(']') {
						break
					}
					if !p.byte(',') {
						return r, false
					}
				}
			}
		case fUploaded, fDownloaded, fLeft, fNumWant, fTS, fSessExp, fPolicySerial:
			n, ok := p.int(bit == fPolicySerial)
			if !ok {
				return r, false
			}
			switch bit {
			case fUploaded:
				r.Uploaded = n
			case fDownloaded:
				r.Downloaded = n
			case fLeft:
				r.Left = n
			case fNumWant:
				if int64(int(n)) != n {
					return r, false
				}
				r.NumWant = int(n)
			case fTS:
				r.TS = n
			case fSessExp:
				r.SessExp = n
			case fPolicySerial:
				r.PolicySerial = uint64(n)
			}
		case fRegion, fEvent, fToken:
			s, ok := p.str()
			if !ok {
				return r, false
			}
			switch bit {
			case fRegion:
				r.Region = string(s)
			case fEvent:
				r.Event = Event(s)
			case fToken:
				r.Token = string(s)
			}
		case fSig, fMAC, fGrant:
			s, ok := p.str()
			if !ok {
				return r, false
			}
			d := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
			n, err := base64.StdEncoding.Strict().Decode(d, s)
			if err != nil {
				return r, false
			}
			switch bit {
			case fSig:
				r.Sig = d[:n]
			case fMAC:
				r.MAC = d[:n]
			default:
				r.Grant = d[:n]
			}
		}
		if p.byte('}') {
			break
		}
		if !p.byte(',') {
			return r, false
		}
	}
	p.space()
	return r, p.i == len(p.b) && seen&fContent != 0
}

// The request's fields, one bit each.
const (
	fContent uint32 = 1 << iota
	fPeer
	fAddrs
	fUploaded
	fDownloaded
	fLeft
	fRegion
	fEvent
	fNumWant
	fToken
	fTS
	fSig
	fSessExp
	fMAC
	fPolicySerial
	fGrant
)

// fieldBit is the bit of a field by its exact JSON name.
func fieldBit(k []byte) (uint32, bool) {
	switch string(k) { // no allocation: the compiler compares in place
	case "content":
		return fContent, true
	case "peer":
		return fPeer, true
	case "addrs":
		return fAddrs, true
	case "uploaded":
		return fUploaded, true
	case "downloaded":
		return fDownloaded, true
	case "left":
		return fLeft, true
	case "region":
		return fRegion, true
	case "event":
		return fEvent, true
	case "numwant":
		return fNumWant, true
	case "token":
		return fToken, true
	case "ts":
		return fTS, true
	case "sig":
		return fSig, true
	case "sess_exp":
		return fSessExp, true
	case "mac":
		return fMAC, true
	case "policy_serial":
		return fPolicySerial, true
	case "grant":
		return fGrant, true
	}
	return 0, false
}

// fastParser walks a JSON text; every method skips leading whitespace.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) peek() byte {
	p.space()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// byte consumes c if it comes next.
func (p *fastParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str reads a string with no escapes and no control or non-ASCII bytes (it
// gives up on those: encoding/json's handling of invalid UTF-8 is the
// general path's business), returning its bytes in place.
func (p *fastParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// int reads an integer in JSON's plain form (an optional minus, no leading
// zero, no fraction or exponent) that fits an int64 (a uint64 when
// unsigned, where a minus gives up).
func (p *fastParser) int(unsigned bool) (int64, bool) {
	p.space()
	neg := false
	if p.i < len(p.b) && p.b[p.i] == '-' {
		if unsigned {
			return 0, false
		}
		neg = true
		p.i++
	}
	digits := p.i
	var u uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
		p.i++
	}
	if p.i == digits || (p.b[digits] == '0' && p.i-digits > 1) {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	switch {
	case unsigned:
		return int64(u), true
	case neg && u <= 1<<63:
		return -int64(u), true // -(1<<63) wraps to MinInt64, as wanted
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	}
	return 0, false
}
