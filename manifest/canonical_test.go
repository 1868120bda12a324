package manifest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decodeGeneral is Decode's general path alone: encoding/json, then a
// re-encoding compared with b.
func decodeGeneral(b []byte) (*Manifest, bool) {
	m := new(Manifest)
	if decodeStrict(b, "manifest", m, Version, VersionPaged) != nil {
		return nil, false
	}
	enc, err := json.Marshal(m)
	return m, err == nil && bytes.Equal(enc, b)
}

// canonicalSamples are encodings of manifests of every shape publish
// writes: plain files, a policy with each field, HLS and DASH media.
func canonicalSamples(tb testing.TB) map[string][]byte {
	withPolicy := sampleManifest(tb)
	withPolicy.Policy = &Policy{TTLSeconds: 3600, Scope: "tenant-a", Regions: []string{"eu", "us-east"}}
	if err := withPolicy.Sign(testKey(1)); err != nil {
		tb.Fatal(err)
	}
	emptyPolicy := sampleManifest(tb)
	emptyPolicy.Policy = &Policy{}
	if err := emptyPolicy.Sign(testKey(1)); err != nil {
		tb.Fatal(err)
	}
	return map[string][]byte{
		"files":        encode(tb, sampleManifest(tb)),
		"policy":       encode(tb, withPolicy),
		"empty policy": encode(tb, emptyPolicy),
		"hls":          encode(tb, mediaManifest(tb, nil)),
		"dash": encode(tb, mediaManifest(tb, func(md *Media) {
			md.Kind, md.Entry = MediaDASH, "index.m3u8"
			md.Renditions[0].ID, md.Renditions[0].Playlist = "video-1", ""
		})),
		"vod 2700":       encode(tb, vodManifest(tb, 3, 900)),
		"vod 2700 paged": encode(tb, pagedVOD(tb, 3, 900)),
		"paged":          encode(tb, pagedSample(tb, 300)),
	}
}

// TestDecodeCanonicalTakesPublishedManifests guards the fast path's reason
// to exist: the manifests publish writes decode without encoding/json, to
// the same Manifest the general path gives.
func TestDecodeCanonicalTakesPublishedManifests(t *testing.T) {
	for name, b := range canonicalSamples(t) {
		t.Run(name, func(t *testing.T) {
			fast, ok := decodeCanonical(b)
			if !ok {
				t.Fatal("the fast path gave up on a manifest publish writes")
			}
			slow, ok := decodeGeneral(b)
			if !ok {
				t.Fatal("the general path refused it")
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path decoded\n%+v\ngeneral path\n%+v", fast, slow)
			}
			if _, err := Decode(b); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDecodeCanonicalGivesUp checks that non-canonical variants of a good
// manifest leave the fast path, and that Decode then refuses them with the
// general path's error.
func TestDecodeCanonicalGivesUp(t *testing.T) {
	good := encode(t, mediaManifest(t, nil))
	for name, b := range map[string][]byte{
		"space":             bytes.Replace(good, []byte(`,"name"`), []byte(`, "name"`), 1),
		"field order":       bytes.Replace(good, []byte(`"version":1,"name":"sample"`), []byte(`"name":"sample","version":1`), 1),
		"leading zero":      bytes.Replace(good, []byte(`"duration_ms":2000`), []byte(`"duration_ms":02000`), 1),
		"upper-case hex":    []byte(strings.Replace(string(good), `"root":"`+sampleManifest(t).Files[0].Root.String(), `"root":"`+strings.ToUpper(sampleManifest(t).Files[0].Root.String()), 1)),
		"escaped path":      bytes.Replace(good, []byte(`"dir/a.bin"`), []byte(`"dir\/a.bin"`), 1),
		"empty type":        bytes.Replace(good, []byte(`"chunks":0,"root"`), []byte(`"chunks":0,"type":"","root"`), 1),
		"trailing bytes":    append(bytes.Clone(good), ' '),
		"version 3":         bytes.Replace(good, []byte(`"version":1`), []byte(`"version":3`), 1),
		"zero bandwidth":    bytes.Replace(good, []byte(`"bandwidth":100`), []byte(`"bandwidth":0`), 1),
		"null files":        bytes.Replace(good, []byte(`"files":[`), []byte(`"files":null,"x":[`), 1),
		"unpadded sig":      bytes.Replace(good, []byte(`=="}`), []byte(`"}`), 1),
		"second-precision0": bytes.Replace(good, []byte(`06:00:00Z`), []byte(`06:00:00.0Z`), 1),
	} {
		t.Run(name, func(t *testing.T) {
			if bytes.Equal(b, good) {
				t.Fatal("the variant is the good manifest: the test edit did not apply")
			}
			if _, ok := decodeCanonical(b); ok {
				t.Fatal("the fast path accepted a non-canonical manifest")
			}
			if _, err := Decode(b); err == nil {
				t.Fatal("Decode accepted it")
			}
		})
	}
}

// FuzzDecodeCanonical checks the fast path against the general one: what
// it accepts, encoding/json decodes to an equal Manifest whose encoding is
// exactly the input; and Decode's verdict is the general path's.
func FuzzDecodeCanonical(f *testing.F) {
	for _, b := range canonicalSamples(f) {
		if len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeCanonical(b)
		if !ok {
			return
		}
		slow, ok := decodeGeneral(b)
		if !ok {
			t.Fatalf("the fast path accepted what the general path refuses: %q", b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path decoded\n%+v\ngeneral path\n%+v", fast, slow)
		}
	})
}
