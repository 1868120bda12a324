package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// versioned is a signed document that carries its format version.
type versioned interface {
	formatVersion() int
}

func (m *Manifest) formatVersion() int      { return m.Version }
func (u *ChannelUpdate) formatVersion() int { return u.Version }
func (r *Revocation) formatVersion() int    { return r.Version }

// decodeStrict is the first step of every signed document's decoder
// (manifests, channel updates, revocation lists): b must carry a version
// field equal to one of versions (ErrVersion otherwise, so a newer format is
// told apart from garbage), then decode into v as exactly one JSON value
// with no unknown field (ErrMalformed). what names the document in errors.
// The caller checks bounds, canonical form and the signature.
//
// A document of the right version decodes in one pass, which is what a
// manifest of thousands of files costs a viewer's start-up; only a
// document that fails, or carries another version, is read a second time
// to tell a newer format from garbage.
func decodeStrict(b []byte, what string, v versioned, versions ...int) error {
	err := decodeOne(b, what, v)
	if err == nil && slices.Contains(versions, v.formatVersion()) {
		return nil
	}
	read, verr := checkVersion(b, what, versions)
	if verr != nil {
		return verr
	}
	if err == nil { // the version field is right, yet v has another: a duplicate key
		err = fmt.Errorf("%w: %s: version field read as %d, want %d", ErrMalformed, what, v.formatVersion(), read)
	}
	return err
}

// checkVersion says whether b has a version field equal to one of
// versions, and returns it.
func checkVersion(b []byte, what string, versions []int) (int, error) {
	var ver struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &ver); err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if ver.Version == nil {
		return 0, fmt.Errorf("%w: %s has no version field", ErrMalformed, what)
	}
	if !slices.Contains(versions, *ver.Version) {
		reads := fmt.Sprint(versions[0])
		for i, v := range versions[1:] {
			if i == len(versions)-2 {
				reads += " or "
			} else {
				reads += ", "
			}
			reads += fmt.Sprint(v)
		}
		return 0, fmt.Errorf("%w: %s version %d (this Shoal reads version %s)", ErrVersion, what, *ver.Version, reads)
	}
	return *ver.Version, nil
}

// decodeOne decodes b into v as exactly one JSON value with no unknown
// field.
func decodeOne(b []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the %s", ErrMalformed, what)
	}
	return nil
}
