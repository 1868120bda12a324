package tracker

import "github.com/redis/go-redis/v9"

// scriptPrelude is shared by the scripts. KEYS hold one or more swarms'
// keys, six each in the order of redisStore.swarmKeys; swarm(g) names the
// g-th. trim removes up to limit peers last seen before cutoff, remembers
// the signed ones as stopped (as the memory store does, so a replay of
// their last announce cannot list them again), and returns {id, entry, id,
// entry, …} for the audit log. Numbers go back to Redis through
// string.format('%d'): Lua would print large ones as 1e+15.
const scriptPrelude = `
local function swarm(g)
  local b = (g - 1) * 6
  return {P = KEYS[b + 1], S = KEYS[b + 2], M = KEYS[b + 3], E = KEYS[b + 4], X = KEYS[b + 5], T = KEYS[b + 6]}
end
local function meta(v)
  local ts, up, dn = string.match(v, '^(%-?%d+) (%-?%d+) (%-?%d+)$')
  return tonumber(ts), tonumber(up), tonumber(dn)
end
local function forget(w, id)
  redis.call('ZREM', w.P, id)
  redis.call('ZREM', w.S, id)
  redis.call('HDEL', w.M, id)
  redis.call('HDEL', w.E, id)
end
-- trimStopped bounds the stopped set: stops older than the clock skew go
-- (their announces are refused as stale anyway), then the oldest past the
-- cap. Called wherever the set grows.
local function trimStopped(w, stopcut, stopcap)
  redis.call('ZREMRANGEBYSCORE', w.T, '-inf', '(' .. stopcut)
  local n = redis.call('ZCARD', w.T)
  if n > stopcap then redis.call('ZREMRANGEBYRANK', w.T, 0, n - stopcap - 1) end
end
local function trim(w, cutoff, limit, stopcut, stopcap)
  local gone = {}
  local old = redis.call('ZRANGEBYSCORE', w.P, '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
  if #old == 0 then return gone end
  for _, id in ipairs(old) do
    local m = redis.call('HGET', w.M, id)
    gone[#gone + 1] = id
    gone[#gone + 1] = redis.call('HGET', w.E, id) or ''
    forget(w, id)
    if m then
      local ts = meta(m)
      if ts and ts > 0 then redis.call('ZADD', w.T, string.format('%d', ts), id) end
    end
  end
  trimStopped(w, stopcut, stopcap)
  if redis.call('ZCARD', w.P) == 0 then redis.call('DEL', w.X) end
  return gone
end
`

// announceFields is how many ARGV one announce takes in announceScript
// (the script says 9 too), after announceHeader (8 there too).
const (
	announceHeader = 8
	announceFields = 9
)

// announceScript records a batch of announces, over one or more swarms,
// in order (see redisBatcher). ARGV: peer TTL (ms), clock skew (ms), key
// TTL (ms), swarm cap (negative: none), stopped cap, trim limit, the
// number of announces n, the trim mask (one byte per swarm group: '1' to
// trim it, '0' not); then per announce announceFields values: swarm
// (1-based index into KEYS' groups of six), now (Unix ms), peer, event,
// ts, uploaded, downloaded, left, entry.
//
// A swarm whose mask byte is '1' is trimmed of its expired peers before
// its first announce of the batch; the replica asks for that at most
// every trimEvery per swarm (redisStore.trimDue), since peers expire only
// a TTL after their last announce. The transfer counters of a batch's
// announces are added per swarm at the end (one HINCRBY per field and
// swarm, not per announce). It returns {statuses, expired}: statuses[i] is the i-th
// announce's joined, ok, capped (answered, not listed), left (a stop
// removed the peer), none (a stop from a peer not listed) or replay;
// expired[g] is swarm g's trimmed peers {id, entry, …}. All six key TTLs
// are set once per swarm and batch when a peer stops or when the swarm was
// empty before the batch's joins, and a key's alone when a write may have
// just created it (a new seed, a new total); the rest is left to the
// replica's index refresh (redisStore.index), every third of the peer TTL,
// which saves six calls on the common path. The sample is read outside the
// script, in the same pipeline.
var announceScript = redis.NewScript(scriptPrelude + `
local ttl, skew, keyttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local cap, stopcap, limit, n = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local trimmask = ARGV[8]

-- What the peer transferred since its last announce, added to the swarm's
-- pending totals (written once per swarm after the batch); a counter that
-- went down means it restarted its session.
local function counters(w, up, dn, pup, pdn)
  local du, dd = up - pup, dn - pdn
  if du < 0 then du = up end
  if dd < 0 then dd = dn end
  w.du, w.dd = w.du + du, w.dd + dd
end
-- emptied: the swarm's last peer left and its totals went with it.
local function emptied(w)
  redis.call('DEL', w.X)
  w.du, w.dd, w.done = 0, 0, 0
end

local function one(w, now, a)
  local id, ev, tsraw, upraw, dnraw = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local ts, up, dn = tonumber(tsraw), tonumber(upraw), tonumber(dnraw)
  local prev = redis.call('HGET', w.M, id)
  local pts, pup, pdn = 0, 0, 0
  if prev then pts, pup, pdn = meta(prev) end
  if ts ~= 0 then
    if prev and ts <= pts then return 'replay' end
    if not prev then
      local st = redis.call('ZSCORE', w.T, id)
      if st and ts <= tonumber(st) then return 'replay' end
    end
  end
  if ev == 'stopped' then
    if not prev then return 'none' end
    counters(w, up, dn, pup, pdn)
    forget(w, id)
    redis.call('ZADD', w.T, tsraw, id)
    if redis.call('ZCARD', w.P) == 0 then emptied(w) end
    return 'left'
  end
  local status = 'ok'
  if not prev then
    if cap >= 0 and redis.call('ZCARD', w.P) >= cap then return 'capped' end
    status = 'joined'
  end
  counters(w, up, dn, pup, pdn)
  if ev == 'completed' then w.done = w.done + 1 end
  redis.call('ZADD', w.P, now, id)
  if ARGV[a + 8] == '0' then
    if redis.call('ZADD', w.S, now, id) == 1 then w.newS = true end
  elseif prev then -- a newcomer is in no seed set
    redis.call('ZREM', w.S, id)
  end
  redis.call('HSET', w.M, id, tsraw .. ' ' .. upraw .. ' ' .. dnraw)
  redis.call('HSET', w.E, id, ARGV[a + 9])
  return status
end

local statuses, gone, sw, touched, lastnow = {}, {}, {}, {}, {}
for i = 1, n do
  local a = 8 + (i - 1) * 9
  local g, now = tonumber(ARGV[a + 1]), ARGV[a + 2]
  local w = sw[g]
  if not w then
    w = swarm(g)
    w.du, w.dd, w.done, w.joins = 0, 0, 0, 0
    sw[g] = w
    if string.byte(trimmask, g) == 49 then
      gone[g] = trim(w, string.format('%d', tonumber(now) - ttl), limit, string.format('%d', tonumber(now) - skew), stopcap)
    else
      gone[g] = {}
    end
  end
  lastnow[g] = now
  local st = one(w, now, a)
  statuses[i] = st
  if st == 'left' then touched[g] = 2 elseif st == 'joined' and not touched[g] then touched[g] = 1 end
  if st == 'joined' then w.joins = w.joins + 1 end
end
-- The totals: a field whose new value is the increment was absent, and
-- its key may be new.
local function add(w, f, d)
  if d ~= 0 and redis.call('HINCRBY', w.X, f, string.format('%d', d)) == d then w.newX = true end
end
for g, w in pairs(sw) do
  add(w, 'up', w.du)
  add(w, 'dn', w.dd)
  add(w, 'done', w.done)
  -- Key TTLs: every key of a swarm that had a stop (the stopped set may be
  -- new) or whose peers all joined in this batch (it was empty: its keys
  -- are new); otherwise only a seed set that gained a member or totals
  -- that gained a field, which may have just been created. Keys that
  -- existed keep the TTL set when they were created, refreshed by the
  -- replicas' index refresh.
  local t = touched[g]
  if t == 2 then trimStopped(w, string.format('%d', tonumber(lastnow[g]) - skew), stopcap) end
  if t == 2 or (t == 1 and redis.call('ZCARD', w.P) <= w.joins) then
    for _, k in ipairs({w.P, w.S, w.M, w.E, w.X, w.T}) do redis.call('PEXPIRE', k, keyttl) end
  else
    if w.newS then redis.call('PEXPIRE', w.S, keyttl) end
    if w.newX then redis.call('PEXPIRE', w.X, keyttl) end
  end
end
return {statuses, gone}
`)

// trimScript expires one swarm's silent peers (ARGV: cutoff, stopped
// cutoff, stopped cap, trim limit) and returns {expired, peers left}. When
// none are left it deletes the swarm's keys but the stopped set, which
// keeps refusing replays until its TTL.
var trimScript = redis.NewScript(scriptPrelude + `
local w = swarm(1)
local gone = trim(w, ARGV[1], tonumber(ARGV[4]), ARGV[2], tonumber(ARGV[3]))
trimStopped(w, ARGV[2], tonumber(ARGV[3]))
local n = redis.call('ZCARD', w.P)
if n == 0 then redis.call('DEL', w.P, w.S, w.M, w.E, w.X) end
return {gone, n}
`)
