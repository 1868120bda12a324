package tracker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The operator's policy in Redis, shared by the replicas:
//
//	<prefix>policy   hash: serial → decimal serial, doc → the encoded policy
//
// set only by putPolicyScript, which compares serials and writes both
// fields in one step, then publishes the new serial on the channel
// <prefix>policy. Every replica subscribes to it and also reads the serial
// once a second (policySyncEvery), so a notice lost while its connection
// was down delays the change by a second at most. The key does not expire.

// putPolicyScript stores ARGV[2] as the policy if its serial ARGV[1] is
// above the stored one, and publishes the serial on ARGV[3]. Serials are
// decimal strings compared by length then bytes: exact for every uint64,
// which Lua's doubles are not. It returns {1, serial} when it stored, {0,
// stored serial} when not.
var putPolicyScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'serial')
if cur and (#cur > #ARGV[1] or (#cur == #ARGV[1] and cur >= ARGV[1])) then
  return {0, cur}
end
redis.call('HSET', KEYS[1], 'serial', ARGV[1], 'doc', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return {1, ARGV[1]}
`)

func (rs *redisStore) policyKey() string { return rs.prefix + "policy" }

func (rs *redisStore) putPolicy(ctx context.Context, serial uint64, doc []byte) (bool, uint64, error) {
	s := strconv.FormatUint(serial, 10)
	r, err := putPolicyScript.Run(ctx, rs.c, []string{rs.policyKey()}, s, doc, rs.policyKey()).Slice()
	if err == nil && len(r) != 2 {
		err = fmt.Errorf("policy script answered %d values, want 2", len(r))
	}
	if err != nil {
		return false, 0, rs.fail("store the policy", err)
	}
	stored, _ := r[0].(int64)
	cs, _ := r[1].(string)
	cur, err := strconv.ParseUint(cs, 10, 64)
	if err != nil {
		return false, 0, rs.fail("store the policy", fmt.Errorf("stored serial %q: %v", cs, err))
	}
	return stored == 1, cur, nil
}

func (rs *redisStore) loadPolicy(ctx context.Context, have uint64) (uint64, []byte, error) {
	s, err := rs.c.HGet(ctx, rs.policyKey(), "serial").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, rs.fail("read the policy's serial", err)
	}
	serial, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, nil, rs.fail("read the policy's serial", fmt.Errorf("%s holds serial %q: %v", rs.policyKey(), s, err))
	}
	if serial <= have {
		return serial, nil, nil
	}
	// The doc may be a newer one's than the serial above, stored between
	// the two reads: as good, since it is decoded and checked whatever it
	// is.
	v, err := rs.c.HGet(ctx, rs.policyKey(), "doc").Bytes()
	if err != nil {
		return 0, nil, rs.fail("read the policy", err)
	}
	return serial, v, nil
}

func (rs *redisStore) watchPolicy(ctx context.Context, changed func()) {
	ps := rs.c.Subscribe(ctx, rs.policyKey())
	defer ps.Close()
	msgs := ps.Channel() // reconnects by itself; a lost notice is caught by the tick
	t := time.NewTicker(policySyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-msgs:
		case <-t.C:
		}
		changed()
	}
}

var _ policyBackend = (*redisStore)(nil)
