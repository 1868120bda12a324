package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// decodeStrict is the first step of every signed document's decoder
// (manifests, channel updates, revocation lists): b must carry a version
// field equal to version (ErrVersion otherwise, so a newer format is told
// apart from garbage), then decode into v as exactly one JSON value with no
// unknown field (ErrMalformed). what names the document in errors. The
// caller checks bounds, canonical form and the signature.
func decodeStrict(b []byte, what string, version int, v any) error {
	var ver struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &ver); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if ver.Version == nil {
		return fmt.Errorf("%w: %s has no version field", ErrMalformed, what)
	}
	if *ver.Version != version {
		return fmt.Errorf("%w: %s version %d (this Shoal reads version %d)", ErrVersion, what, *ver.Version, version)
	}
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
