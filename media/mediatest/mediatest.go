// Package mediatest makes short real HLS and DASH outputs with ffmpeg for
// tests (media parsing, publishing, gateway playback). Only tests import it.
// ffmpeg must be installed: a missing ffmpeg fails the test with a message
// saying so, it is never skipped.
package mediatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Every output is this long, cut into segments of SegmentDuration.
const (
	Duration        = 6 * time.Second
	SegmentDuration = 2 * time.Second
)

// Segment types for HLS.
const (
	TS   = "ts"
	FMP4 = "fmp4"
)

// FFmpeg returns the path of the ffmpeg binary or fails t.
func FFmpeg(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required to generate test media and is not installed (apt-get install ffmpeg): %v", err)
	}
	return p
}

// inputs is a 6 s test picture and tone, small and quick to encode.
func inputs() []string {
	return []string{
		"-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "6",
	}
}

// videoCodec encodes keyframes every 2 s so segments cut at SegmentDuration.
var videoCodec = []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"}

func run(t testing.TB, dir string, args ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(FFmpeg(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// HLS writes a VOD media playlist index.m3u8 with video and audio muxed into
// segType (TS or FMP4, the latter with an init.mp4) segments into dir, and
// returns the playlist's path.
func HLS(t testing.TB, dir, segType string) string {
	t.Helper()
	args := append(inputs(), videoCodec...)
	args = append(args, "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod")
	switch segType {
	case TS:
	case FMP4:
		args = append(args, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
	default:
		t.Fatalf("mediatest: unknown HLS segment type %q", segType)
	}
	run(t, dir, append(args, "index.m3u8")...)
	return filepath.Join(dir, "index.m3u8")
}

// HLSMaster writes master.m3u8 over two video renditions (160x120 in v0/,
// 80x60 in v1/, TS segments) into dir and returns the master's path.
func HLSMaster(t testing.TB, dir string) string {
	t.Helper()
	args := append(inputs(), "-map", "0:v", "-map", "0:v")
	args = append(args, videoCodec...)
	args = append(args, "-s:v:1", "80x60", "-b:v:0", "300k", "-b:v:1", "100k",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-master_pl_name", "master.m3u8", "-var_stream_map", "v:0 v:1",
		"-hls_segment_filename", "v%v/seg%d.ts", "v%v/index.m3u8")
	run(t, dir, args...)
	return filepath.Join(dir, "master.m3u8")
}

// DASH writes manifest.mpd (SegmentTemplate with SegmentTimeline, one video
// and one audio representation, fMP4 segments) into dir and returns its
// path.
func DASH(t testing.TB, dir string) string {
	t.Helper()
	args := append(inputs(), videoCodec...)
	args = append(args, "-c:a", "aac", "-f", "dash", "-seg_duration", "2", "manifest.mpd")
	run(t, dir, args...)
	return filepath.Join(dir, "manifest.mpd")
}
