package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/shoal-cdn/shoal/core"
)

// An availability summary is what a peer tells its swarm's gossip topic
// about itself: which chunk ranges it holds, how many more peers it takes,
// and the addresses (binary multiaddrs) to dial it at. It is a hint, never trusted for data
// (chunks are verified as ever), so it may undersell: a peer whose holdings
// are more fragmented than MaxSummaryRanges runs tells the first ones only.
//
// Layout (big-endian; not a frame, a whole gossip message):
//
//	magic "SHAV" | version uint8 (=SummaryVersion) | content ID [32]byte |
//	seq uint64 | chunks uint32 (<= MaxBitfield) | slots uint8 | flags uint8 |
//	address count uint8 (<= MaxSummaryAddrs) | per address: length uint8
//	(1..MaxSummaryAddr) and the bytes | range count uint16
//	(<= MaxSummaryRanges) | per range: uvarint skip | uvarint length-1
//
// A range's skip is its first index minus the end of the previous range
// (minus 0 for the first range, minus 1 after: ranges never touch), so
// ranges are sorted, disjoint, not adjacent, and each has one encoding.
// Every range ends at or before chunks. Decoding is strict and canonical,
// like frames: re-encoding a decoded summary yields the input bytes.
type Summary struct {
	Content core.ContentID
	// Seq orders one sender's summaries: a receiver keeps the highest.
	Seq uint64
	// Chunks is the content's chunk count (the receiver checks it against
	// its manifest).
	Chunks int
	// Slots is how many more peers the sender accepts in this swarm
	// (capped at 255): a dialer skips senders with none.
	Slots int
	// Flags: SummarySeeder.
	Flags uint8
	// Addrs are the addresses to dial the sender at: binary multiaddrs
	// (the receiver decodes and checks them; wire only bounds them).
	Addrs []string
	// Ranges are the held runs of chunk indexes, sorted and disjoint.
	Ranges []Run
}

// Run is the chunk indexes From..To-1.
type Run struct{ From, To int }

// Summary flags.
const (
	SummarySeeder uint8 = 1 << 0 // the sender holds every chunk
)

// Summary limits. MaxSummary bounds an encoded summary (the gossip topic's
// validator refuses bigger messages before decoding).
const (
	SummaryVersion   = 1
	MaxSummaryAddrs  = 8
	MaxSummaryAddr   = 255
	MaxSummaryRanges = 512
	MaxSummary       = summaryHeader + MaxSummaryAddrs*(1+MaxSummaryAddr) + 2 + MaxSummaryRanges*2*binary.MaxVarintLen32
	summaryHeader    = 4 + 1 + 32 + 8 + 4 + 1 + 1 + 1
)

var summaryMagic = [4]byte{'S', 'H', 'A', 'V'}

// RunsOf returns the held runs of f, at most max of them (the first ones).
func RunsOf(f *Bitfield, max int) []Run {
	var out []Run
	n := f.Len()
	for i := 0; i < n && len(out) < max; {
		if !f.Has(i) {
			i++
			continue
		}
		j := i + 1
		for j < n && f.Has(j) {
			j++
		}
		out = append(out, Run{i, j})
		i = j
	}
	return out
}

// Bitfield returns the summary's holdings as a bitfield of Chunks bits. It
// assumes a summary that Validate accepts (every decoded one is).
func (s *Summary) Bitfield() *Bitfield {
	f := NewBitfield(s.Chunks)
	for _, r := range s.Ranges {
		for i := r.From; i < r.To; i++ {
			f.Set(i)
		}
	}
	return f
}

// Validate checks the summary against the layout's limits.
func (s *Summary) Validate() error {
	switch {
	case s.Chunks < 0 || s.Chunks > MaxBitfield:
		return fmt.Errorf("%w: summary of %d chunks, max %d", ErrMalformed, s.Chunks, MaxBitfield)
	case s.Slots < 0 || s.Slots > 255:
		return fmt.Errorf("%w: summary slots %d, want 0..255", ErrMalformed, s.Slots)
	case len(s.Addrs) > MaxSummaryAddrs:
		return fmt.Errorf("%w: summary has %d addresses, max %d", ErrMalformed, len(s.Addrs), MaxSummaryAddrs)
	case len(s.Ranges) > MaxSummaryRanges:
		return fmt.Errorf("%w: summary has %d ranges, max %d", ErrMalformed, len(s.Ranges), MaxSummaryRanges)
	}
	for _, a := range s.Addrs {
		if len(a) == 0 || len(a) > MaxSummaryAddr {
			return fmt.Errorf("%w: summary address of %d bytes, want 1..%d", ErrMalformed, len(a), MaxSummaryAddr)
		}
	}
	end := -1
	for _, r := range s.Ranges {
		if r.From <= end || r.To <= r.From || r.To > s.Chunks {
			return fmt.Errorf("%w: summary range %d..%d after %d in %d chunks: ranges must be sorted, disjoint, not adjacent and inside the content", ErrMalformed, r.From, r.To, end, s.Chunks)
		}
		end = r.To
	}
	return nil
}

// MarshalSummary encodes s; it fails with ErrMalformed if s breaks a limit.
func MarshalSummary(s *Summary) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, summaryHeader+16*len(s.Addrs)+2+4*len(s.Ranges))
	b = append(b, summaryMagic[:]...)
	b = append(b, SummaryVersion)
	b = append(b, s.Content[:]...)
	b = binary.BigEndian.AppendUint64(b, s.Seq)
	b = binary.BigEndian.AppendUint32(b, uint32(s.Chunks))
	b = append(b, uint8(s.Slots), s.Flags, uint8(len(s.Addrs)))
	for _, a := range s.Addrs {
		b = append(b, uint8(len(a)))
		b = append(b, a...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Ranges)))
	prev := 0
	for k, r := range s.Ranges {
		skip := r.From - prev
		if k > 0 {
			skip-- // ranges never touch: a gap of 1 is coded 0
		}
		b = binary.AppendUvarint(b, uint64(skip))
		b = binary.AppendUvarint(b, uint64(r.To-r.From-1))
		prev = r.To
	}
	return b, nil
}

// UnmarshalSummary decodes a summary, strictly: wrong magic or version,
// limits broken, trailing bytes or a non-canonical encoding fail with
// ErrMalformed (ErrVersion for another version).
func UnmarshalSummary(p []byte) (*Summary, error) {
	if len(p) > MaxSummary {
		return nil, fmt.Errorf("%w: summary of %d bytes, max %d", ErrMalformed, len(p), MaxSummary)
	}
	if len(p) < summaryHeader+2 {
		return nil, fmt.Errorf("%w: summary truncated to %d bytes", ErrMalformed, len(p))
	}
	if [4]byte(p[:4]) != summaryMagic {
		return nil, fmt.Errorf("%w: not an availability summary (magic %q)", ErrMalformed, p[:4])
	}
	if p[4] != SummaryVersion {
		return nil, fmt.Errorf("%w: summary version %d, want %d", ErrVersion, p[4], SummaryVersion)
	}
	s := &Summary{}
	copy(s.Content[:], p[5:37])
	s.Seq = binary.BigEndian.Uint64(p[37:45])
	chunks := binary.BigEndian.Uint32(p[45:49])
	if chunks > MaxBitfield {
		return nil, fmt.Errorf("%w: summary of %d chunks, max %d", ErrMalformed, chunks, MaxBitfield)
	}
	s.Chunks = int(chunks)
	s.Slots, s.Flags = int(p[49]), p[50]
	na := int(p[51])
	if na > MaxSummaryAddrs {
		return nil, fmt.Errorf("%w: summary has %d addresses, max %d", ErrMalformed, na, MaxSummaryAddrs)
	}
	rest := p[summaryHeader:]
	for range na {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, fmt.Errorf("%w: summary address truncated", ErrMalformed)
		}
		l := int(rest[0])
		s.Addrs = append(s.Addrs, string(rest[1:1+l]))
		rest = rest[1+l:]
	}
	if len(rest) < 2 {
		return nil, fmt.Errorf("%w: summary range count truncated", ErrMalformed)
	}
	nr := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if nr > MaxSummaryRanges {
		return nil, fmt.Errorf("%w: summary has %d ranges, max %d", ErrMalformed, nr, MaxSummaryRanges)
	}
	prev := 0
	for k := range nr {
		skip, n := binary.Uvarint(rest)
		if n <= 0 {
			return nil, fmt.Errorf("%w: summary range %d truncated", ErrMalformed, k)
		}
		rest = rest[n:]
		run, n := binary.Uvarint(rest)
		if n <= 0 {
			return nil, fmt.Errorf("%w: summary range %d truncated", ErrMalformed, k)
		}
		rest = rest[n:]
		if k > 0 {
			skip++
		}
		from := uint64(prev) + skip
		to := from + run + 1
		if skip > uint64(chunks) || run >= uint64(chunks) || to > uint64(chunks) {
			return nil, fmt.Errorf("%w: summary range %d ends past chunk %d", ErrMalformed, k, chunks)
		}
		s.Ranges = append(s.Ranges, Run{int(from), int(to)})
		prev = int(to)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the summary", ErrMalformed, len(rest))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	// One encoding per summary: non-minimal varints re-encode shorter.
	if again, _ := MarshalSummary(s); len(again) != len(p) {
		return nil, fmt.Errorf("%w: summary not canonically encoded", ErrMalformed)
	}
	return s, nil
}
