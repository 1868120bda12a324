package origin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// Live channel updates are the one layout file that every follower polls.
// The newest (<channel>/latest) changes about once per target duration, so
// it is served cacheable for half a target duration (what HLS asks of a
// live media playlist) with a strong ETag over its bytes: a CDN in front
// absorbs the polling, and a follower's conditional poll that finds
// nothing new is a 304 without a body. Any origin replica serving the same
// bytes gives the same ETag.

// maxUpdateMaxAge caps the max-age of a channel update, whatever target
// duration it claims.
const maxUpdateMaxAge = 30

// Kinds of layout path, the label of shoal_origin_requests_by_kind_total.
const (
	kindManifest       = "manifest"
	kindHashLayer      = "hash_layer"
	kindRootPage       = "root_page"
	kindChunk          = "chunk"
	kindChannelUpdate  = "channel_update"  // a channel's latest update: what followers poll
	kindChannelHistory = "channel_history" // a numbered update
	kindOther          = "other"
)

// pathKind is the kind of the request path p.
func pathKind(p string) string {
	p = strings.TrimPrefix(p, "/")
	dir, rest, _ := strings.Cut(p, "/")
	switch dir {
	case layout.ManifestDir:
		return kindManifest
	case layout.HashLayerDir:
		return kindHashLayer
	case layout.RootPageDir:
		return kindRootPage
	case layout.ChunkDir:
		return kindChunk
	case layout.ChannelDir:
		id, file, ok := strings.Cut(rest, "/")
		if _, err := manifest.ParseChannelID(id); err != nil || !ok || strings.Contains(file, "/") {
			return kindOther
		}
		if file == layout.ChannelLatest {
			return kindChannelUpdate
		}
		if _, err := strconv.ParseUint(file, 10, 64); err == nil {
			return kindChannelHistory
		}
	}
	return kindOther
}

// serveChannelUpdate serves f, a channel's latest update, cacheable and with
// an ETag over its bytes. It reports false, having written nothing, when f
// does not hold an update whose target duration it can read; the caller
// then serves it as any other changing file.
func serveChannelUpdate(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi os.FileInfo) bool {
	if fi.Size() > manifest.MaxChannelUpdateSize {
		return false
	}
	asFile := func() bool { // rewind for the caller
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			http.Error(w, "channel update unreadable", http.StatusInternalServerError)
			return true
		}
		return false
	}
	b, err := io.ReadAll(io.LimitReader(f, manifest.MaxChannelUpdateSize+1))
	if err != nil || int64(len(b)) > manifest.MaxChannelUpdateSize {
		return asFile()
	}
	// The origin does not verify the update (followers do); it only reads
	// how often it changes.
	var u struct {
		TargetDuration int64 `json:"target_duration"`
	}
	if json.Unmarshal(b, &u) != nil || u.TargetDuration <= 0 {
		return asFile()
	}
	sum := sha256.Sum256(b)
	h := w.Header()
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(min(max(u.TargetDuration/2, 1), maxUpdateMaxAge), 10))
	h.Set("Content-Type", "application/json")
	http.ServeContent(w, r, name, fi.ModTime(), bytes.NewReader(b))
	return true
}
