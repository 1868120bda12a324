// Package live is Shoal's live-channel engine. A Publisher follows a growing
// HLS output (as `ffmpeg -f hls` writes it), publishes each new segment as a
// content of its own and writes a signed, sequence-numbered channel update
// listing the rolling window. A Follower (used by peers) learns updates by
// polling the origin and, over libp2p, by GossipSub (Gossip), keeps the
// newest valid one and renders it as a live HLS media playlist.
//
// Roles (the publisher command, the peer agent) import live; live imports
// the content model, publish and media, never the roles.
package live

import (
	"strconv"

	"github.com/shoal-cdn/shoal/layout"
	"github.com/shoal-cdn/shoal/manifest"
)

// ChannelDir is the origin layout directory of live channels. Their newest
// updates change about once per target duration; origins serve them
// cacheable for half of that, with an ETag.
const ChannelDir = layout.ChannelDir

// LatestPath is the slash-separated layout path of a channel's newest update.
func LatestPath(id manifest.ChannelID) string {
	return ChannelDir + "/" + id.String() + "/" + layout.ChannelLatest
}

// UpdatePath is the layout path of a channel's update number seq, kept for a
// while so a late reader can see recent history.
func UpdatePath(id manifest.ChannelID, seq uint64) string {
	return ChannelDir + "/" + id.String() + "/" + strconv.FormatUint(seq, 10)
}

// TopicName is the GossipSub topic of a channel's updates.
func TopicName(id manifest.ChannelID) string { return "/shoal/channel/" + id.String() }
