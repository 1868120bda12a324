package token

import (
	"crypto/subtle"
	"hash/maphash"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/shoal-cdn/shoal/core"
)

// tokenCache remembers tokens whose signatures verified, by their printed
// form. A lookup hashes the string with a per-process random seed (no
// copy, no cryptographic hash) and then compares the whole string in
// constant time, so only the very token that verified is ever a hit.
type tokenCache struct {
	seed   maphash.Seed
	shards []*lru.Cache[uint64, cachedToken]
}

type cachedToken struct {
	tok string
	t   *Token
}

// newTokenCache holds at most n tokens (n > 0), least recently used of
// each shard (core.ShardSizes) forgotten first.
func newTokenCache(n int) *tokenCache {
	sizes := core.ShardSizes(n)
	c := &tokenCache{seed: maphash.MakeSeed(), shards: make([]*lru.Cache[uint64, cachedToken], len(sizes))}
	for i, size := range sizes {
		c.shards[i], _ = lru.New[uint64, cachedToken](size) // size >= 1
	}
	return c
}

func (c *tokenCache) shard(h uint64) *lru.Cache[uint64, cachedToken] {
	return c.shards[h%uint64(len(c.shards))]
}

// get returns the verified token printed as tok, if remembered; h is
// tok's hash (hash).
func (c *tokenCache) get(tok string, h uint64) (*Token, bool) {
	e, ok := c.shard(h).Get(h)
	if !ok || len(e.tok) != len(tok) || subtle.ConstantTimeCompare(bytesOf(e.tok), bytesOf(tok)) != 1 {
		return nil, false
	}
	return e.t, true
}

// add remembers t, printed as tok, whose signatures verified.
func (c *tokenCache) add(tok string, h uint64, t *Token) {
	c.shard(h).Add(h, cachedToken{tok: tok, t: t})
}

func (c *tokenCache) hash(tok string) uint64 { return maphash.String(c.seed, tok) }

// Len is how many tokens c holds.
func (c *tokenCache) Len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}

// bytesOf views s as bytes without copying; the bytes are only read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
