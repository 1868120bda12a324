package tracker

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shoal-cdn/shoal/internal/redistest"
)

// roundTrips counts the client's round trips: single commands and
// pipelines (a batch's script, reads and index writes are one).
type roundTrips struct {
	mu            sync.Mutex
	single, pipes int
	singleNames   []string
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" { // a new connection's handshake
			r.mu.Lock()
			r.single++
			r.singleNames = append(r.singleNames, cmd.Name())
			r.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.mu.Lock()
		r.pipes++
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}

// commandCalls reads Redis's count of each command since the last reset,
// the script's own calls included, without the reading's.
func commandCalls(t *testing.T, c redis.UniversalClient) map[string]int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(l), ":calls=")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || name == "config|resetstat" {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		out[name], _ = strconv.Atoi(n)
	}
	return out
}

// TestRedisRoundTripsAndCalls guards the cost of the common announces in
// what does not depend on the machine: a replica's first announce to a
// swarm is two round trips (the swarm-cap counts, then one pipeline with
// the script, the sample read and the index writes), a later one is one;
// and a re-announce costs Redis the script and three calls in it (the
// peer's value, its last-seen score, the new value), four for a seed
// (its seed score), when no counter moved, no trim or index is due and
// the swarm's sample is fresh.
func TestRedisRoundTripsAndCalls(t *testing.T) {
	rds := redistest.Start(t)
	rs, _ := redisReplicas(t, rds.URL(), 1)
	s := rs[0]
	st := s.store.(*redisStore)
	announce(t, s, req("warm", "p0", "", 5)) // loads the script
	rt := &roundTrips{}
	st.c.AddHook(rt)

	announce(t, s, req("c", "p1", "", 5))
	if rt.single != 0 || rt.pipes != 2 {
		t.Fatalf("first announce to a swarm: %d single commands %v and %d pipelines, want 0 and 2", rt.single, rt.singleNames, rt.pipes)
	}
	announce(t, s, req("c", "p2", "", 0))
	if rt.single != 0 || rt.pipes != 3 {
		t.Fatalf("second announce: %d single commands %v and %d pipelines in all, want 0 and 3", rt.single, rt.singleNames, rt.pipes)
	}

	for _, tc := range []struct {
		peer string
		left int64
		want map[string]int
	}{
		{"p1", 5, map[string]int{"evalsha": 1, "hget": 1, "zadd": 1, "hset": 1}},
		{"p2", 0, map[string]int{"evalsha": 1, "hget": 1, "zadd": 2, "hset": 1}},
	} {
		if err := st.c.ConfigResetStat(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		announce(t, s, req("c", tc.peer, "", tc.left))
		if got := commandCalls(t, st.c); !maps.Equal(got, tc.want) {
			t.Errorf("re-announce of %s (left %d): Redis ran %v, want %v", tc.peer, tc.left, got, tc.want)
		}
	}
}
