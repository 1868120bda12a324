package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-cdn/shoal/core"
)

func testContent(name string) core.ContentID { return core.ContentID(core.SumSHA256([]byte(name))) }

func validRequest() AnnounceRequest {
	return AnnounceRequest{
		Content: testContent("a"), Peer: "12D3KooWPeerA", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"},
		Uploaded: 1, Downloaded: 2, Left: 3, Region: "eu-west", Event: EventStarted, NumWant: 10,
	}
}

func TestValidateRejectsEachBadField(t *testing.T) {
	many := make([]string, MaxAddrs+1)
	for i := range many {
		many[i] = "/ip4/127.0.0.1/tcp/1"
	}
	cases := []struct {
		name  string
		mod   func(*AnnounceRequest)
		field string
	}{
		{"zero content", func(r *AnnounceRequest) { r.Content = core.ContentID{} }, "content"},
		{"empty peer", func(r *AnnounceRequest) { r.Peer = "" }, "peer"},
		{"oversized peer", func(r *AnnounceRequest) { r.Peer = strings.Repeat("p", MaxPeerIDLen+1) }, "peer"},
		{"peer with space", func(r *AnnounceRequest) { r.Peer = "a b" }, "peer"},
		{"too many addrs", func(r *AnnounceRequest) { r.Addrs = many }, "addrs"},
		{"oversized addr", func(r *AnnounceRequest) { r.Addrs = []string{"/dns4/" + strings.Repeat("a", MaxAddrLen) + "/tcp/1"} }, "addrs"},
		{"not a multiaddr", func(r *AnnounceRequest) { r.Addrs = []string{"127.0.0.1:4001"} }, "addrs"},
		{"empty addr", func(r *AnnounceRequest) { r.Addrs = []string{""} }, "addrs"},
		{"negative uploaded", func(r *AnnounceRequest) { r.Uploaded = -1 }, "uploaded"},
		{"negative downloaded", func(r *AnnounceRequest) { r.Downloaded = -1 }, "downloaded"},
		{"negative left", func(r *AnnounceRequest) { r.Left = -5 }, "left"},
		{"oversized region", func(r *AnnounceRequest) { r.Region = strings.Repeat("r", MaxRegionLen+1) }, "region"},
		{"region with slash", func(r *AnnounceRequest) { r.Region = "eu/west" }, "region"},
		{"unknown event", func(r *AnnounceRequest) { r.Event = "paused" }, "event"},
		{"negative numwant", func(r *AnnounceRequest) { r.NumWant = -1 }, "numwant"},
		{"huge numwant", func(r *AnnounceRequest) { r.NumWant = MaxNumWant + 1 }, "numwant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := validRequest()
			c.mod(&r)
			err := r.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Validate = %v, want FieldError on %q", err, c.field)
			}
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("error %v does not wrap ErrInvalidRequest", err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, mod := range []func(*AnnounceRequest){
		func(*AnnounceRequest) {},
		func(r *AnnounceRequest) { r.Addrs, r.Region, r.Event, r.NumWant = nil, "", EventNone, 0 },
		func(r *AnnounceRequest) { r.Event = EventStopped },
		func(r *AnnounceRequest) { r.Event = EventCompleted; r.Left = 0 },
		func(r *AnnounceRequest) { r.Addrs = []string{"/ip6/::1/udp/4001/quic-v1", "/dns4/example.com/tcp/443"} },
	} {
		r := validRequest()
		mod(&r)
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", r, err)
		}
	}
}

func TestDecodeAnnounceRequestJSON(t *testing.T) {
	cid := testContent("a").String()
	cases := []struct {
		name, body string
		field      string // "" means accepted
	}{
		{"ok with unknown telemetry field", `{"content":"` + cid + `","peer":"p1","left":0,"telemetry":{"rtt_ms":[1,2]}}`, ""},
		{"bad json", `{"content":`, "body"},
		{"not an object", `[1,2]`, "body"},
		{"trailing data", `{"content":"` + cid + `","peer":"p1"} {}`, "body"},
		{"empty body", ``, "body"},
		{"missing content", `{"peer":"p1"}`, "content"},
		{"null content", `{"content":null,"peer":"p1"}`, "content"},
		{"bad content", `{"content":"nope","peer":"p1"}`, "content"},
		{"content of wrong type", `{"content":5,"peer":"p1"}`, "content"},
		{"uploaded of wrong type", `{"content":"` + cid + `","peer":"p1","uploaded":"x"}`, "uploaded"},
		{"addrs of wrong type", `{"content":"` + cid + `","peer":"p1","addrs":"/ip4/1.2.3.4/tcp/1"}`, "addrs"},
		{"fractional left", `{"content":"` + cid + `","peer":"p1","left":1.5}`, "left"},
		{"negative left", `{"content":"` + cid + `","peer":"p1","left":-1}`, "left"},
		{"unknown event", `{"content":"` + cid + `","peer":"p1","event":"bogus"}`, "event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := DecodeAnnounceRequest(strings.NewReader(c.body))
			if c.field == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if req.Content != testContent("a") || req.Peer != "p1" {
					t.Fatalf("decoded %+v", req)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("decode = %v, want FieldError on %q", err, c.field)
			}
		})
	}
}

func TestResponseIntervals(t *testing.T) {
	r := AnnounceResponse{IntervalS: Seconds(1500 * time.Millisecond), MinIntervalS: -3}
	if r.Interval() != 1500*time.Millisecond {
		t.Errorf("Interval = %v", r.Interval())
	}
	if r.MinInterval() != 0 {
		t.Errorf("MinInterval of a negative value = %v, want 0", r.MinInterval())
	}
}

// FuzzDecodeAnnounceRequest checks decode never panics and that a decoded
// request survives encode → decode unchanged.
func FuzzDecodeAnnounceRequest(f *testing.F) {
	b, _ := marshalRequest(validRequest())
	f.Add(b)
	f.Add([]byte(`{"content":"` + testContent("x").String() + `","peer":"p","numwant":3,"extra":[{}]}`))
	f.Add([]byte(`{"content":null}`))
	f.Add([]byte(`{"addrs":[1]}`))
	f.Add([]byte(`{"content":"` + testContent("x").String() + `","peer":"p","sig":"","ts":5,"token":"t"}`))
	f.Add([]byte(`{"content":"` + testContent("x").String() + `","peer":"p","ts":5,"sess_exp":9,"mac":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}`))
	f.Add([]byte(`{"content":"` + testContent("x").String() + `","peer":"p","ts":5,"sess_exp":-9,"mac":"AAAA","sig":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeAnnounceRequest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		enc, err := marshalRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeAnnounceRequest(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(normalize(req), normalize(again)) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, again)
		}
	})
}

// normalize maps an empty address list or signature to nil: omitempty
// drops them.
func normalize(r AnnounceRequest) AnnounceRequest {
	if len(r.Addrs) == 0 {
		r.Addrs = nil
	}
	if len(r.Sig) == 0 {
		r.Sig = nil
	}
	if len(r.MAC) == 0 {
		r.MAC = nil
	}
	return r
}

var _ json.Unmarshaler = (*AnnounceRequest)(nil)
