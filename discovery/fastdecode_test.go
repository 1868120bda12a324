package discovery

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// generalDecode is the reference: encoding/json through UnmarshalJSON.
func generalDecode(b []byte) (AnnounceRequest, error) {
	var r AnnounceRequest
	err := r.UnmarshalJSON(b)
	return r, err
}

// TestFastDecodeTakesWhatPeersSend: the announces peers and the load
// generator send (encoding/json's output: signed, MACed, with a token, a
// policy serial, numwant) take the fast path and decode exactly as
// encoding/json decodes them.
func TestFastDecodeTakesWhatPeersSend(t *testing.T) {
	plain := validRequest()
	withSerial := validRequest()
	withSerial.PolicySerial, withSerial.Addrs = 1<<63+5, []string{}
	stopped := validRequest()
	stopped.Event, stopped.Uploaded, stopped.Left = EventStopped, -7, 0 // Validate's business, not the decoder's
	for name, r := range map[string]AnnounceRequest{
		"plain": plain, "signed": signedRequest(t), "maced": macedRequest(t), "serial": withSerial, "stopped": stopped,
	} {
		b, err := marshalRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		fast, ok := decodeAnnounceFast(b)
		if !ok {
			t.Errorf("%s: %s did not take the fast path", name, b)
			continue
		}
		ref, err := generalDecode(b)
		if err != nil {
			t.Fatalf("%s: general path: %v", name, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Errorf("%s: fast path gave\n%+v\nencoding/json\n%+v", name, fast, ref)
		}
		if !reflect.DeepEqual(fast, r) && name != "serial" {
			t.Errorf("%s: decoded %+v, sent %+v", name, fast, r)
		}
	}
}

// TestFastDecodeGivesUp: every shape the fast path does not handle goes to
// encoding/json, whose errors (and answers) stay the reference.
func TestFastDecodeGivesUp(t *testing.T) {
	id := testContent("x").String()
	for _, body := range []string{
		`{}`,
		`{"peer":"p"}`,
		`{"content":"` + id + `","Peer":"p"}`, // another case: encoding/json matches it
		`{"content":"` + id + `","peer":"p","peer":"q"}`,      // repeated field: the last wins there
		`{"content":"` + id + `","peer":null}`,                // null
		`{"content":"` + id + `","peer":"a\u0062"}`,           // an escape
		`{"content":"` + id + `","peer":"é"}`,                 // non-ASCII
		`{"content":"` + id + `","left":1.0}`,                 // a fraction
		`{"content":"` + id + `","left":1e3}`,                 // an exponent
		`{"content":"` + id + `","left":01}`,                  // a leading zero
		`{"content":"` + id + `","left":9223372036854775808}`, // past int64
		`{"content":"` + id + `","policy_serial":-1}`,
		`{"content":"` + id + `","extra":1}`,   // unknown field: ignored by encoding/json
		`{"content":"` + id + `","sig":"AAA"}`, // not padded base64
		`{"content":"nope"}`,
		`{"content":"` + id + `"} {}`, // trailing data
		`{"content":"` + id + `",}`,
		`[]`,
	} {
		if r, ok := decodeAnnounceFast([]byte(body)); ok {
			t.Errorf("fast path took %s: %+v", body, r)
		}
	}
}

// FuzzDecodeAnnounceFast: whatever the fast path accepts, encoding/json
// accepts too and decodes to the same request.
func FuzzDecodeAnnounceFast(f *testing.F) {
	for _, r := range []AnnounceRequest{validRequest(), signedRequest(f), macedRequest(f)} {
		b, _ := marshalRequest(r)
		f.Add(b)
	}
	id := testContent("x").String()
	f.Add([]byte(`{"content":"` + id + `","addrs":[],"sig":"","numwant":-0,"uploaded":-9223372036854775808}`))
	f.Add([]byte(` {"content" : "` + id + `" , "addrs" : [ "a" , "b" ] }` + "\n"))
	f.Add([]byte(`{"content":"` + id + `","sess_exp":9,"mac":"AAAA","grant":"AQRhY21lAAA="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeAnnounceFast(data)
		if !ok {
			return
		}
		ref, err := generalDecode(data)
		if err != nil {
			t.Fatalf("fast path took %q, encoding/json refused it: %v", data, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q: fast path gave\n%+v\nencoding/json\n%+v", data, fast, ref)
		}
		if !json.Valid(data) {
			t.Fatalf("fast path took invalid JSON %q", data)
		}
		if bytes.Contains(data, []byte(`\`)) || strings.Count(string(data), `"content"`) != 1 {
			t.Fatalf("fast path took %q, which it should give up on", data)
		}
	})
}

func BenchmarkDecodeAnnounceBody(b *testing.B) {
	body, err := marshalRequest(macedRequest(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeAnnounceFast(body); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := generalDecode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
