package tracker

import "github.com/redis/go-redis/v9"

// swarmKeyCount is how many keys one swarm has (redisStore.swarmKeys), in
// the order the scripts take them: last seen, seeds, entries, totals,
// stopped.
const swarmKeyCount = 5

// scriptPrelude is shared by the scripts. KEYS hold one or more swarms'
// keys, swarmKeyCount each in the order of redisStore.swarmKeys; swarm(g)
// names the g-th. A peer's stored value (see storedValue) is
// "ts uploaded downloaded " followed by its binary entry, whose second
// byte holds the seed flag (1): value() reads the numbers and the flag.
// trim removes up to limit peers last seen before cutoff, remembers the
// signed ones as stopped (as the memory store does, so a replay of their
// last announce cannot list them again), and returns {id, value, id,
// value, …} for the audit log. Numbers go back to Redis through
// string.format('%d'): Lua would print large ones as 1e+15.
const scriptPrelude = `
local function swarm(g)
  local b = (g - 1) * 5
  return {P = KEYS[b + 1], S = KEYS[b + 2], E = KEYS[b + 3], X = KEYS[b + 4], T = KEYS[b + 5]}
end
-- value parses a stored value: signing time (raw text and number),
-- uploaded, downloaded, seed. A value it cannot parse reads as zeros.
local function value(v)
  local ts, up, dn, at = string.match(v, '^(%-?%d+) (%-?%d+) (%-?%d+) ()')
  if not ts then return '0', 0, 0, 0, false end
  local flags = string.byte(v, at + 1) or 0
  return ts, tonumber(ts), tonumber(up), tonumber(dn), flags % 2 == 1
end
local function forget(w, id, seed)
  redis.call('ZREM', w.P, id)
  if seed then redis.call('ZREM', w.S, id) end
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
    local v = redis.call('HGET', w.E, id)
    gone[#gone + 1] = id
    gone[#gone + 1] = v or ''
    local seed, ts = true, 0
    if v then
      local _
      _, ts, _, _, seed = value(v)
    end
    forget(w, id, seed)
    if ts > 0 then redis.call('ZADD', w.T, string.format('%d', ts), id) end
  end
  trimStopped(w, stopcut, stopcap)
  if redis.call('ZCARD', w.P) == 0 then redis.call('DEL', w.X) end
  return gone
end
`

// announceHeader is how many ARGV announceScript takes before its swarms
// (the script says 7 too).
const announceHeader = 7

// announceScript records a batch of announces, over one or more swarms,
// in order (see redisBatcher). ARGV: peer TTL (ms), clock skew (ms), key
// TTL (ms), swarm cap (negative: none), stopped cap, trim limit, the
// number of swarms; then per swarm (in KEYS order) its announce count and
// '1' to trim it first or '0' not, followed by its announces, four values
// each: now (Unix ms), peer, event code ('s' stopped, 'c' completed, '-'
// any other) and the stored value to write (storedValue: signing time and
// counters in it).
//
// A swarm is trimmed of its expired peers before its first announce of the
// batch when asked; the replica asks for that at most every trimEvery per
// swarm (redisStore.trimDue), since peers expire only a TTL after their
// last announce. The transfer counters of a batch's announces are added
// per swarm at the end (one HINCRBY per field and swarm, not per
// announce). It returns {statuses, expired}: statuses is one byte per
// announce, in ARGV order: 'j' joined, 'o' ok, 'c' capped (answered, not
// listed), 'l' left (a stop removed the peer), 'n' none (a stop from a
// peer not listed) or 'r' replay; expired[g] is swarm g's trimmed peers
// {id, value, …}.
//
// A re-announce costs Redis three calls (four for a seed): the peer's
// value, its last-seen score, its seed score, the new value. Key TTLs: all
// of a swarm's when it was empty before the batch's joins (its keys are
// new), and a key's alone when a write may have just created it (the seed
// set gaining a member, totals gaining a field, the stopped set gaining a
// stop); the rest is left to the replica's index refresh
// (redisStore.index), every third of the peer TTL. The sample is read
// outside the script, in the same pipeline.
var announceScript = redis.NewScript(scriptPrelude + `
local ttl, skew, keyttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local cap, stopcap, limit, nsw = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

-- card is the swarm's peer count, read once per batch and then kept
-- current by the batch's joins and stops.
local function card(w)
  if not w.card then w.card = redis.call('ZCARD', w.P) end
  return w.card
end

local function one(w, now, id, ev, v)
  local prev = redis.call('HGET', w.E, id)
  local tsraw, ts, up, dn, seed = value(v)
  local pts, pup, pdn, pseed = 0, 0, 0, false
  if prev then
    local _
    _, pts, pup, pdn, pseed = value(prev)
  end
  if ts ~= 0 then
    if prev and ts <= pts then return 'r' end
    if not prev then
      local st = redis.call('ZSCORE', w.T, id)
      if st and ts <= tonumber(st) then return 'r' end
    end
  end
  if ev == 's' then
    if not prev then return 'n' end
  elseif not prev then
    local n = card(w)
    if cap >= 0 and n >= cap then return 'c' end
    if n == 0 then w.fresh = true end -- its keys are new
    w.card = n + 1
  end
  -- What the peer transferred since its last announce, added to the
  -- swarm's totals after the batch; a counter that went down means it
  -- restarted its session.
  local du, dd = up - pup, dn - pdn
  if du < 0 then du = up end
  if dd < 0 then dd = dn end
  w.du, w.dd = w.du + du, w.dd + dd
  if ev == 's' then
    forget(w, id, pseed)
    w.stops = true
    if redis.call('ZADD', w.T, tsraw, id) == 1 then w.newT = true end
    if w.card then w.card = w.card - 1 else w.card = redis.call('ZCARD', w.P) end
    if w.card == 0 then
      -- its last peer left: its totals go too
      redis.call('DEL', w.X)
      w.du, w.dd, w.done, w.newX = 0, 0, 0, false
    end
    return 'l'
  end
  if ev == 'c' then w.done = w.done + 1 end
  redis.call('ZADD', w.P, now, id)
  if seed then
    if redis.call('ZADD', w.S, now, id) == 1 then w.newS = true end
  elseif pseed then
    redis.call('ZREM', w.S, id)
  end
  redis.call('HSET', w.E, id, v)
  if prev then return 'o' end
  return 'j'
end

-- add adds d to a totals field; one whose new value is the increment was
-- absent, and its key may be new.
local function add(w, f, d)
  if d ~= 0 and redis.call('HINCRBY', w.X, f, string.format('%d', d)) == d then w.newX = true end
end

local statuses, gone = {}, {}
local a = 8
for g = 1, nsw do
  local count, trimit = tonumber(ARGV[a]), ARGV[a + 1]
  a = a + 2
  local w = swarm(g)
  w.du, w.dd, w.done = 0, 0, 0
  local now = ARGV[a]
  if trimit == '1' then
    gone[g] = trim(w, string.format('%d', tonumber(now) - ttl), limit, string.format('%d', tonumber(now) - skew), stopcap)
  else
    gone[g] = {}
  end
  for _ = 1, count do
    now = ARGV[a]
    statuses[#statuses + 1] = one(w, now, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
    a = a + 4
  end
  add(w, 'up', w.du)
  add(w, 'dn', w.dd)
  add(w, 'done', w.done)
  if w.stops then trimStopped(w, string.format('%d', tonumber(now) - skew), stopcap) end
  if w.fresh then
    for _, k in ipairs({w.P, w.S, w.E, w.X, w.T}) do redis.call('PEXPIRE', k, keyttl) end
  else
    if w.newS then redis.call('PEXPIRE', w.S, keyttl) end
    if w.newX then redis.call('PEXPIRE', w.X, keyttl) end
    if w.newT then redis.call('PEXPIRE', w.T, keyttl) end
  end
end
return {table.concat(statuses), gone}
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
if n == 0 then redis.call('DEL', w.P, w.S, w.E, w.X) end
return {gone, n}
`)
