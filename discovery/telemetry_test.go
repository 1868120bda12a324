package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleTelemetry(peer string) TelemetryReport {
	return TelemetryReport{
		Peer: peer, Seq: 7, IntervalS: 30, Region: "eu-west", Network: "AS3320", Device: "tv", Cohort: "p2p-rollout/on",
		FromPeers: 3 << 20, FromOrigin: 1 << 20, Uploaded: 5 << 20, Startups: []int64{1, 2, 0, 0, 1, 0, 0}, StartupS: 2.6,
		Stalls: 1, StallS: 0.8, WatchS: 28.5, Swarms: 2, Chunks: 40, RareChunks: 3,
	}
}

func TestTelemetrySignatureBindsEveryField(t *testing.T) {
	k, id := newIdentity(t)
	r := sampleTelemetry(id)
	if err := r.Sign(k, reportNow); err != nil {
		t.Fatal(err)
	}
	if err := r.VerifySignature(reportNow.Add(time.Minute), 2*time.Minute); err != nil {
		t.Fatalf("a fresh signed report: %v", err)
	}
	if err := r.VerifySignature(reportNow.Add(3*time.Minute), 2*time.Minute); !errors.Is(err, ErrStale) {
		t.Fatalf("a report signed 3 min ago with a 2 min window: %v, want ErrStale", err)
	}
	for name, change := range map[string]func(*TelemetryReport){
		"seq":        func(r *TelemetryReport) { r.Seq++ },
		"from_peers": func(r *TelemetryReport) { r.FromPeers++ },
		"uploaded":   func(r *TelemetryReport) { r.Uploaded-- },
		"startups":   func(r *TelemetryReport) { r.Startups = []int64{0, 2, 0, 0, 1, 0, 1} },
		"watch_s":    func(r *TelemetryReport) { r.WatchS += 0.001 },
		"cohort":     func(r *TelemetryReport) { r.Cohort = "p2p-rollout/off" },
		"region":     func(r *TelemetryReport) { r.Region = "us-east" },
		"token":      func(r *TelemetryReport) { r.Token = "x" },
		"rare":       func(r *TelemetryReport) { r.RareChunks = 4 },
	} {
		c := r
		c.Startups = append([]int64(nil), r.Startups...)
		change(&c)
		if err := c.VerifySignature(reportNow, time.Minute); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed after signing: %v, want ErrBadSignature", name, err)
		}
	}
	_, other := newIdentity(t)
	c := r
	c.Peer = other
	if err := c.VerifySignature(reportNow, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another peer's ID on a signed report: %v", err)
	}
}

func TestTelemetryMAC(t *testing.T) {
	_, id := newIdentity(t)
	key := bytes.Repeat([]byte{7}, SessionKeyLen)
	r := sampleTelemetry(id)
	r.MACWith(Session{Exp: reportNow.Add(time.Hour).Unix(), Key: key}, reportNow)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyMAC(key, reportNow, time.Minute); err != nil {
		t.Fatalf("a MACed report: %v", err)
	}
	r.StallS++
	if err := r.VerifyMAC(key, reportNow, time.Minute); !errors.Is(err, ErrSessionInvalid) {
		t.Fatalf("changed after the MAC: %v, want ErrSessionInvalid", err)
	}
	r.StallS--
	if err := r.VerifyMAC(key, reportNow.Add(2*time.Hour), 3*time.Hour); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("after the ticket's exp: %v, want ErrSessionExpired", err)
	}
}

// TestDecodeTelemetryRefusesBadReports: each malformed report is refused
// with a FieldError naming the field at fault.
func TestDecodeTelemetryRefusesBadReports(t *testing.T) {
	good := sampleTelemetry("12D3KooWabc")
	enc := func(change func(m map[string]any)) []byte {
		b, _ := json.Marshal(good)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		change(m)
		b, _ = json.Marshal(m)
		return b
	}
	if _, err := DecodeTelemetry(bytes.NewReader(enc(func(map[string]any) {}))); err != nil {
		t.Fatalf("the good report: %v", err)
	}
	for _, c := range []struct {
		name  string
		body  []byte
		field string
	}{
		{"no peer", enc(func(m map[string]any) { delete(m, "peer") }), "peer"},
		{"peer with a space", enc(func(m map[string]any) { m["peer"] = "a b" }), "peer"},
		{"seq zero", enc(func(m map[string]any) { m["seq"] = 0 }), "seq"},
		{"seq negative", enc(func(m map[string]any) { m["seq"] = -3 }), "seq"},
		{"seq a string", enc(func(m map[string]any) { m["seq"] = "7" }), "seq"},
		{"interval below 1 s", enc(func(m map[string]any) { m["interval_s"] = 0.5 }), "interval_s"},
		{"interval over a day", enc(func(m map[string]any) { m["interval_s"] = 1e6 }), "interval_s"},
		{"region too long", enc(func(m map[string]any) { m["region"] = strings.Repeat("r", 65) }), "region"},
		{"network with a colon", enc(func(m map[string]any) { m["network"] = "AS:1" }), "network"},
		{"device with a space", enc(func(m map[string]any) { m["device"] = "smart tv" }), "device"},
		{"cohort with unicode", enc(func(m map[string]any) { m["cohort"] = "exp/é" }), "cohort"},
		{"negative bytes", enc(func(m map[string]any) { m["from_peers"] = -1 }), "from_peers"},
		{"fractional bytes", enc(func(m map[string]any) { m["from_origin"] = 1.5 }), "from_origin"},
		{"huge upload", enc(func(m map[string]any) { m["uploaded"] = 1e19 }), "uploaded"},
		{"uploaded beyond 2^53", enc(func(m map[string]any) { m["uploaded"] = int64(1)<<53 + 2 }), "uploaded"},
		{"negative stalls", enc(func(m map[string]any) { m["stalls"] = -1 }), "stalls"},
		{"negative stall_s", enc(func(m map[string]any) { m["stall_s"] = -0.1 }), "stall_s"},
		{"absurd watch_s", enc(func(m map[string]any) { m["watch_s"] = 1e300 }), "watch_s"},
		{"startups of 6 buckets", enc(func(m map[string]any) { m["startups"] = []int{1, 1, 1, 1, 1, 1} }), "startups"},
		{"startups of 8 buckets", enc(func(m map[string]any) { m["startups"] = []int{1, 1, 1, 1, 1, 1, 1, 1} }), "startups"},
		{"negative startup count", enc(func(m map[string]any) { m["startups"] = []int{1, -1, 1, 1, 1, 1, 1} }), "startups"},
		{"rare above chunks", enc(func(m map[string]any) { m["rare_chunks"] = 41 }), "rare_chunks"},
		{"negative gauge", enc(func(m map[string]any) { m["swarms"] = -1 }), "swarms"},
		{"a content ID", enc(func(m map[string]any) { m["content"] = "abc" }), "content"},
		{"an address", enc(func(m map[string]any) { m["addrs"] = []string{"/ip4/1.2.3.4/tcp/1"} }), "addrs"},
		{"a tenant", enc(func(m map[string]any) { m["tenant"] = "b" }), "tenant"},
		{"mac of the wrong size", enc(func(m map[string]any) { m["mac"] = "AAAA"; m["sess_exp"] = 5 }), "mac"},
		{"mac without sess_exp", enc(func(m map[string]any) { m["mac"] = strings.Repeat("A", 43) + "=" }), "sess_exp"},
		{"oversized", []byte(`{"peer":"` + strings.Repeat("a", MaxTelemetryBytes) + `"}`), "body"},
		{"two objects", append(enc(func(map[string]any) {}), []byte(`{}`)...), "body"},
		{"not JSON", []byte(`seq=1`), "body"},
	} {
		_, err := DecodeTelemetry(bytes.NewReader(c.body))
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: got %v, want a FieldError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: error names field %q (%v), want %q", c.name, fe.Field, err, c.field)
		}
	}
}

func TestTelemetryClientHonoursRetryAfter(t *testing.T) {
	var got TelemetryReport
	code := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != TelemetryPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var err error
		if got, err = DecodeTelemetry(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"error":"slow down"}`))
	}))
	defer srv.Close()
	c, err := NewTrackerClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleTelemetry("p1")
	if err := c.Telemetry(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("tracker got %+v, sent %+v", got, r)
	}
	code = http.StatusTooManyRequests
	err = c.Telemetry(t.Context(), r)
	if d := RetryAfter(err); d != 7*time.Second {
		t.Fatalf("a 429 with Retry-After 7: %v (retry after %v)", err, d)
	}
	if errors.Is(err, ErrTelemetryRefused) {
		t.Fatalf("a 429 counts as refused (its figures would be dropped): %v", err)
	}
	code = http.StatusForbidden
	if err := c.Telemetry(t.Context(), r); !errors.Is(err, ErrTelemetryRefused) {
		t.Fatalf("a 403: %v, want ErrTelemetryRefused", err)
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	good, _ := json.Marshal(sampleTelemetry("12D3KooWabc"))
	f.Add(good)
	f.Add([]byte(`{"peer":"a","seq":1,"interval_s":1,"startups":[0,0,0,0,0,0,1e30]}`))
	f.Add([]byte(`{"peer":"a","seq":1,"interval_s":1,"watch_s":1e-400,"sig":"!!"}`))
	f.Add([]byte(`{"peer":"0","seq":1,"interval_s":1,"sig":"","mac":"","startups":[]}`)) // empty lists re-encode as absent
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeTelemetry(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		_ = r.VerifySignature(reportNow, time.Minute) // must not panic on any well-shaped report
		for _, v := range []float64{r.StallS, r.WatchS, r.StartupS, r.IntervalS} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("decoded a non-finite or negative number: %+v", r)
			}
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeTelemetry(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("decode → encode → decode differs:\n%+v\n%+v", r, again)
		}
	})
}
