package discovery

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newIdentity(t testing.TB) (crypto.PrivKey, string) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id.String()
}

var reportNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func signedReport(t testing.TB) (Report, crypto.PrivKey) {
	t.Helper()
	k, id := newIdentity(t)
	_, off := newIdentity(t)
	r := Report{Reporter: id, Offender: off, Content: testContent("r"), Chunk: 3, Hash: strings.Repeat("ab", 32)}
	if err := SignReport(&r, k, reportNow); err != nil {
		t.Fatal(err)
	}
	return r, k
}

func TestReportSignatureBindsEveryField(t *testing.T) {
	r, _ := signedReport(t)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(reportNow.Add(time.Minute)); err != nil {
		t.Fatalf("a fresh signed report: %v", err)
	}
	_, other := newIdentity(t)
	for name, change := range map[string]func(*Report){
		"reporter": func(r *Report) { r.Reporter = other }, // someone else claims it
		"offender": func(r *Report) { r.Offender = other },
		"content":  func(r *Report) { r.Content = testContent("s") },
		"chunk":    func(r *Report) { r.Chunk++ },
		"hash":     func(r *Report) { r.Hash = strings.Repeat("cd", 32) },
		"time":     func(r *Report) { r.Time++ },
	} {
		c := r
		change(&c)
		var fe *FieldError
		if err := c.Verify(reportNow); !errors.As(err, &fe) || (fe.Field != "sig" && fe.Field != "reporter") {
			t.Errorf("%s changed: Verify = %v, want a sig error", name, err)
		}
	}
	if err := r.Verify(reportNow.Add(ReportMaxAge + time.Minute)); err == nil || !strings.Contains(err.Error(), "time") {
		t.Errorf("a stale report: Verify = %v, want a time error", err)
	}
}

func TestDecodeReportRejects(t *testing.T) {
	r, _ := signedReport(t)
	good, _ := json.Marshal(r)
	tests := map[string]struct {
		body  string
		field string
	}{
		"unknown field": {strings.Replace(string(good), "{", `{"x":1,`, 1), "body"},
		"self report":   {strings.Replace(string(good), r.Offender, r.Reporter, 1), "offender"},
		"short hash":    {strings.Replace(string(good), r.Hash, "abcd", 1), "hash"},
		"negative":      {strings.Replace(string(good), `"chunk":3`, `"chunk":-1`, 1), "chunk"},
		"no sig":        {strings.Replace(string(good), `"sig":"`, `"xsig":"`, 1), "body"},
		"too big":       {strings.Repeat(" ", MaxReportBytes+1), "body"},
		"trailing":      {string(good) + "{}", "body"},
	}
	for name, tc := range tests {
		_, err := DecodeReport(strings.NewReader(tc.body))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err %v, want a %s FieldError", name, err, tc.field)
		}
	}
	got, err := DecodeReport(bytes.NewReader(good))
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("good report decoded to %+v, %v", got, err)
	}
}

func FuzzDecodeReport(f *testing.F) {
	r, _ := signedReport(f)
	good, _ := json.Marshal(r)
	f.Add(good)
	f.Add([]byte(`{"reporter":"a","offender":"b","chunk":1e99}`))
	f.Add([]byte(`{"sig":"!!"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		_ = r.Verify(reportNow) // must not panic on any well-shaped report
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeReport(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(r, again) || !bytes.Equal(r.SigningBytes(), again.SigningBytes()) {
			t.Fatalf("round trip changed the report:\n%+v\n%+v", r, again)
		}
	})
}
