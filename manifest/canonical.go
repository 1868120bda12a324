package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

// decodeCanonical is Decode's fast path. A manifest of thousands of files
// is what a viewer's first request waits for, and encoding/json spends most
// of that decoding it by reflection and encoding it again to prove the
// bytes canonical. decodeCanonical reads the canonical form directly: it
// expects every field in declaration order, with exactly the bytes
// json.Marshal writes for its value, and so proves canonical form as it
// goes. It gives up (ok false) on anything else, including valid canonical
// documents it does not handle (a string that json.Marshal escapes, a null
// or empty list, a version it does not know): the caller then takes the
// general path, which accepts or rejects with a precise error. Whatever it
// accepts, the general path accepts too, with an equal Manifest
// (FuzzDecodeCanonical checks both).
//
// It checks form only; the caller validates the result and its signature.
func decodeCanonical(b []byte) (m *Manifest, ok bool) {
	d := canonDecoder{b: b, ok: true}
	m = new(Manifest)
	d.lit(`{"version":`)
	if m.Version = int(d.int()); m.Version != Version && m.Version != VersionPaged {
		return nil, false
	}
	d.lit(`,"name":`)
	m.Name = d.str()
	d.lit(`,"created":`)
	m.Created = d.time()
	d.lit(`,"publisher":`)
	m.Publisher = d.publicKey()
	d.lit(`,"chunk_size":`)
	m.ChunkSize = d.int()
	d.lit(`,"hash":`)
	m.Hash = d.str()
	d.lit(`,"files":[`)
	if d.ok {
		// Every file has one size: size the list once.
		m.Files = make([]File, 0, bytes.Count(b[d.i:], []byte(`,"size":`)))
	}
	for d.ok {
		var f File
		d.lit(`{"path":`)
		f.Path = d.str()
		d.lit(`,"size":`)
		f.Size = d.int()
		d.lit(`,"chunks":`)
		f.Chunks = d.int()
		if d.opt(`,"type":`) {
			f.MediaType = d.mediaType()
		}
		// A root is omitted only when zero (a paged file's): an explicit
		// zero root is not canonical.
		if d.opt(`,"root":`) {
			if f.Root = d.hash(); f.Root.IsZero() {
				d.ok = false
			}
		}
		d.lit(`}`)
		m.Files = append(m.Files, f)
		if !d.opt(`,`) {
			break
		}
	}
	d.lit(`]`)
	if d.opt(`,"root_pages":[`) {
		for d.ok {
			m.RootPages = append(m.RootPages, d.hash())
			if !d.opt(`,`) {
				break
			}
		}
		d.lit(`]`)
	}
	if d.opt(`,"policy":`) {
		m.Policy = d.policy()
	}
	if d.opt(`,"media":`) {
		d.files = m.Files
		d.sorted = slices.IsSortedFunc(m.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
		m.Media = d.media()
	}
	if d.opt(`,"signature":`) {
		m.Signature = d.bytes()
	}
	d.lit(`}`)
	if !d.ok || d.i != len(b) {
		return nil, false
	}
	return m, true
}

// canonDecoder reads b from i; ok turns false at the first byte that is
// not what the canonical encoding would have there, and stays false (every
// method then returns a zero value).
type canonDecoder struct {
	b  []byte
	i  int
	ok bool
	// types are the first distinct media types read (mediaType).
	types []string
	// files are the manifest's files, sorted by path or not, and next the
	// one after the last a segment path was found at (segmentPath).
	files  []File
	sorted bool
	next   int
}

// lit consumes s.
func (d *canonDecoder) lit(s string) {
	if !d.opt(s) {
		d.ok = false
	}
}

// opt consumes s if it comes next.
func (d *canonDecoder) opt(s string) bool {
	if !d.ok || len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// raw consumes a JSON string and returns its contents, which must be
// printable ASCII that json.Marshal writes unescaped (no quote, backslash,
// or the HTML-sensitive <, > and &).
func (d *canonDecoder) raw() []byte {
	if !d.opt(`"`) {
		d.ok = false
		return nil
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s
		case c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&':
			d.ok = false
			return nil
		}
	}
	d.ok = false
	return nil
}

func (d *canonDecoder) str() string { return string(d.raw()) }

// segmentPath is a media segment's path. It names one of the files, so
// it shares that file's string when found: next to the previous segment's
// file, or by binary search when the files are sorted (as published).
func (d *canonDecoder) segmentPath() string {
	s := d.raw()
	if !d.ok {
		return ""
	}
	if d.next < len(d.files) && d.files[d.next].Path == string(s) {
		d.next++
		return d.files[d.next-1].Path
	}
	if d.sorted {
		lo, hi := 0, len(d.files)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if d.files[mid].Path < string(s) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < len(d.files) && d.files[lo].Path == string(s) {
			d.next = lo + 1
			return d.files[lo].Path
		}
	}
	return string(s)
}

// mediaType is a file's non-empty media type. A content has few distinct
// ones, so each is allocated once and shared by the files that have it.
func (d *canonDecoder) mediaType() string {
	s := d.raw()
	if len(s) == 0 {
		d.ok = false
		return ""
	}
	for _, t := range d.types {
		if t == string(s) {
			return t
		}
	}
	t := string(s)
	if len(d.types) < 8 {
		d.types = append(d.types, t)
	}
	return t
}

// nonEmptyStr is a string of an omitempty field, present only when not "".
func (d *canonDecoder) nonEmptyStr() string {
	s := d.raw()
	if len(s) == 0 {
		d.ok = false
	}
	return string(s)
}

// int consumes an integer as strconv writes it: an optional minus, no
// leading zero, at most 18 digits (so it fits an int64 without checks).
func (d *canonDecoder) int() int64 {
	if !d.ok {
		return 0
	}
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	j := d.i
	if neg {
		j++
	}
	start := j
	var v int64
	for ; j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9'; j++ {
		v = v*10 + int64(d.b[j]-'0')
	}
	n := j - start
	if n == 0 || n > 18 || n > 1 && d.b[start] == '0' || neg && v == 0 {
		d.ok = false
		return 0
	}
	d.i = j
	if neg {
		return -v
	}
	return v
}

// nonZeroInt is an integer of an omitempty field.
func (d *canonDecoder) nonZeroInt() int64 {
	v := d.int()
	if v == 0 {
		d.ok = false
	}
	return v
}

// time consumes a time as time.Time's MarshalJSON writes it.
func (d *canonDecoder) time() time.Time {
	start := d.i
	d.raw()
	if !d.ok {
		return time.Time{}
	}
	var t time.Time
	q := d.b[start:d.i]
	if t.UnmarshalJSON(q) != nil {
		d.ok = false
		return time.Time{}
	}
	if enc, err := t.MarshalJSON(); err != nil || !bytes.Equal(enc, q) {
		d.ok = false
	}
	return t
}

// publicKey consumes a key in its printed form.
func (d *canonDecoder) publicKey() PublicKey {
	var k PublicKey
	s := d.raw()
	if !d.ok || len(s) != base64.RawURLEncoding.EncodedLen(len(k)) {
		d.ok = false
		return k
	}
	if !core.DecodeBase64URL(k[:], string(s)) || k.String() != string(s) {
		d.ok = false
	}
	return k
}

// hash consumes a hash in lowercase hex.
func (d *canonDecoder) hash() core.Hash {
	var h core.Hash
	s := d.raw()
	if !d.ok || len(s) != 2*len(h) {
		d.ok = false
		return h
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			d.ok = false
			return h
		}
	}
	if _, err := hex.Decode(h[:], s); err != nil {
		d.ok = false
	}
	return h
}

// bytes consumes a non-empty []byte as json.Marshal writes it: standard
// base64 with padding.
func (d *canonDecoder) bytes() []byte {
	s := d.raw()
	if !d.ok || len(s) == 0 {
		d.ok = false
		return nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil || base64.StdEncoding.EncodedLen(n) != len(s) {
		d.ok = false
		return nil
	}
	out = out[:n]
	// Padding bits must be zero, as the encoder writes them.
	if base64.StdEncoding.EncodeToString(out) != string(s) {
		d.ok = false
		return nil
	}
	return out
}

// policy consumes a Policy object (fields omitted when empty).
func (d *canonDecoder) policy() *Policy {
	p := new(Policy)
	d.lit(`{`)
	sep := ""
	if d.opt(`"ttl_s":`) {
		p.TTLSeconds = d.nonZeroInt()
		sep = ","
	}
	if d.opt(sep + `"scope":`) {
		p.Scope = d.nonEmptyStr()
		sep = ","
	}
	if d.opt(sep + `"regions":[`) {
		for d.ok {
			p.Regions = append(p.Regions, d.str())
			if !d.opt(`,`) {
				break
			}
		}
		d.lit(`]`)
	}
	d.lit(`}`)
	return p
}

// media consumes a Media object.
func (d *canonDecoder) media() *Media {
	md := new(Media)
	d.lit(`{"kind":`)
	md.Kind = d.str()
	d.lit(`,"entry":`)
	md.Entry = d.str()
	d.lit(`,"renditions":[`)
	for d.ok {
		md.Renditions = append(md.Renditions, d.rendition())
		if !d.opt(`,`) {
			break
		}
	}
	d.lit(`]}`)
	return md
}

// rendition consumes a Rendition object.
func (d *canonDecoder) rendition() Rendition {
	var r Rendition
	d.lit(`{"id":`)
	r.ID = d.str()
	if d.opt(`,"playlist":`) {
		r.Playlist = d.nonEmptyStr()
	}
	if d.opt(`,"bandwidth":`) {
		r.Bandwidth = d.nonZeroInt()
	}
	if d.opt(`,"codecs":`) {
		r.Codecs = d.nonEmptyStr()
	}
	if d.opt(`,"resolution":`) {
		r.Resolution = d.nonEmptyStr()
	}
	if d.opt(`,"init":`) {
		r.Init = d.nonEmptyStr()
	}
	d.lit(`,"segments":[`)
	if end := bytes.IndexByte(d.b[d.i:], ']'); d.ok && end > 0 {
		// A path may hold a ']': then this is only a first guess.
		r.Segments = make([]MediaSegment, 0, bytes.Count(d.b[d.i:d.i+end], []byte(`{"path":`)))
	}
	for d.ok {
		var s MediaSegment
		d.lit(`{"path":`)
		s.Path = d.segmentPath()
		d.lit(`,"duration_ms":`)
		s.DurationMs = d.int()
		d.lit(`,"seq":`)
		s.Seq = d.int()
		d.lit(`}`)
		r.Segments = append(r.Segments, s)
		if !d.opt(`,`) {
			break
		}
	}
	d.lit(`]}`)
	return r
}
