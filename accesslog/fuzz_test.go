package accesslog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics, and what it accepts encodes back to lines
// it parses to the same entries (decode → encode → decode is stable).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-30T14:05:01.234Z","daemon":"gateway","remote":"~Jd0v0Yc2mJ1mZQnH","method":"GET","path":"/c/x/a","status":206,"bytes":1000,"duration_ms":3.2,"range":"bytes=0-1","user_agent":"ua","request_id":"r1"}` + "\n"))
	f.Add([]byte(`{"time":"2026-11-30T14:05:01Z","daemon":"origin","remote":"","method":"HEAD","path":"/","status":200,"bytes":0,"duration_ms":0,"request_id":"x"}`))
	f.Add([]byte("{}\n{\"time\":1}\nnot json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for i := range entries {
			if err := enc.Encode(&entries[i]); err != nil {
				t.Fatalf("encode %+v: %v", entries[i], err)
			}
		}
		again, err := Parse(&buf)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", buf.Bytes(), err)
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries, then %d", len(entries), len(again))
		}
		for i := range again {
			if !again[i].Time.Equal(entries[i].Time) {
				t.Fatalf("entry %d: time %v, then %v", i, entries[i].Time, again[i].Time)
			}
			a, b := entries[i], again[i]
			a.Time = b.Time // compared with Equal above (the monotonic and location parts differ)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("entry %d: %+v, then %+v", i, entries[i], again[i])
			}
		}
	})
}
