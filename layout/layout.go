// Package layout names the files of a Shoal origin: the static, plain-file
// tree that `shoal publish` writes and that `shoal origin`, nginx, S3 or any
// CDN can serve unchanged. Publisher, origin and fetchers all import it so
// the three agree on paths.
//
//	manifests/<content ID>      signed manifest (JSON); its SHA-256 is the content ID
//	hashes/<root hex>           a file's hash layer: its chunk hashes, 32 bytes each
//	roots/<sha256 hex>          a paged manifest's root page: file roots, 32 bytes each
//	chunks/<hh>/<hash hex>      one chunk; <hh> is the first two hex digits of its hash
//	revocations/<publisher>     a publisher key's signed revocation list (JSON; changes)
//
// Every path above but revocations names its bytes by their hash (or, for a
// hash layer, by the Merkle root it must reproduce), so all of it is immutable and may be cached
// forever.
package layout

import (
	"strings"

	"github.com/shoal-cdn/shoal/core"
)

// Top-level directories of an origin layout.
const (
	ManifestDir  = "manifests"
	HashLayerDir = "hashes"
	RootPageDir  = "roots"
	ChunkDir     = "chunks"
	// ChannelDir holds live channels' signed updates, which change:
	// <ChannelDir>/<channel ID>/<ChannelLatest> is a channel's newest, and
	// numbered files keep recent ones (see package live).
	ChannelDir    = "channels"
	ChannelLatest = "latest"
	// RevocationDir holds signed revocation lists, one per publisher key,
	// named by the key's printed form. They change (a newer list replaces
	// the file), so they are served uncached like channel updates.
	RevocationDir = "revocations"
)

// RevocationPath is the path of the revocation list signed by the publisher
// key printed as publisher.
func RevocationPath(publisher string) string { return RevocationDir + "/" + publisher }

// ManifestPath is the slash-separated path of a signed manifest.
func ManifestPath(id core.ContentID) string { return ManifestDir + "/" + id.String() }

// HashLayerPath is the path of the hash layer whose Merkle root is root.
func HashLayerPath(root core.Hash) string { return HashLayerDir + "/" + root.String() }

// RootPagePath is the path of the root page whose SHA-256 is h.
func RootPagePath(h core.Hash) string { return RootPageDir + "/" + h.String() }

// ChunkPath is the path of the chunk whose SHA-256 is h.
func ChunkPath(h core.Hash) string {
	s := h.String()
	return ChunkDir + "/" + s[:2] + "/" + s
}

// IsImmutable reports whether a slash-separated path (with or without a
// leading slash) names content-addressed bytes, which never change.
func IsImmutable(p string) bool {
	p = strings.TrimPrefix(p, "/")
	dir, name, ok := strings.Cut(p, "/")
	if !ok {
		return false
	}
	switch dir {
	case ManifestDir:
		_, err := core.ParseContentID(name)
		return err == nil
	case HashLayerDir, RootPageDir:
		_, err := core.ParseHash(name)
		return err == nil
	case ChunkDir:
		shard, name, ok := strings.Cut(name, "/")
		if !ok {
			return false
		}
		h, err := core.ParseHash(name)
		return err == nil && h.String()[:2] == shard
	}
	return false
}
