package tracker

import "github.com/redis/go-redis/v9"

// scriptPrelude is shared by the scripts. KEYS are a swarm's keys in the
// order of redisStore.swarmKeys. trim removes up to limit peers last seen
// before cutoff, remembers the signed ones as stopped (as the memory store
// does, so a replay of their last announce cannot list them again), and
// returns {id, entry, id, entry, …} for the audit log. Numbers go back to
// Redis through string.format('%d'): Lua would print large ones as 1e+15.
const scriptPrelude = `
local P, S, M, E, X, T = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function meta(v)
  local ts, up, dn = string.match(v, '^(%-?%d+) (%-?%d+) (%-?%d+)$')
  return tonumber(ts), tonumber(up), tonumber(dn)
end
local function forget(id)
  redis.call('ZREM', P, id)
  redis.call('ZREM', S, id)
  redis.call('HDEL', M, id)
  redis.call('HDEL', E, id)
end
-- trimStopped bounds the stopped set: stops older than the clock skew go
-- (their announces are refused as stale anyway), then the oldest past the
-- cap. Called wherever the set grows.
local function trimStopped(stopcut, stopcap)
  redis.call('ZREMRANGEBYSCORE', T, '-inf', '(' .. stopcut)
  local n = redis.call('ZCARD', T)
  if n > stopcap then redis.call('ZREMRANGEBYRANK', T, 0, n - stopcap - 1) end
end
local function trim(cutoff, limit, stopcut, stopcap)
  local gone = {}
  local old = redis.call('ZRANGEBYSCORE', P, '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
  if #old == 0 then return gone end
  for _, id in ipairs(old) do
    local m = redis.call('HGET', M, id)
    gone[#gone + 1] = id
    gone[#gone + 1] = redis.call('HGET', E, id) or ''
    forget(id)
    if m then
      local ts = meta(m)
      if ts and ts > 0 then redis.call('ZADD', T, string.format('%d', ts), id) end
    end
  end
  trimStopped(stopcut, stopcap)
  if redis.call('ZCARD', P) == 0 then redis.call('DEL', X) end
  return gone
end
`

// announceScript records one announce; see redisStore.announce for ARGV:
// The key TTLs are set when a peer joins or stops; a re-announce leaves
// them to the replica's index refresh (redisStore.index), every third of
// the peer TTL, which saves six calls on the common path.
//
// now, cutoff, key TTL (ms), peer, event, ts, uploaded, downloaded, left,
// entry, swarm cap (negative: none), sample size (0: none; the store reads
// its sample in the same pipeline instead), stopped cutoff, stopped
// cap, trim limit. It returns {status, expired, sample}: status is joined,
// ok, capped (answered, not listed), left (a stop removed the peer), none
// (a stop from a peer not listed) or replay; sample is {id, entry, …}.
var announceScript = redis.NewScript(scriptPrelude + `
local now, cutoff, keyttl = ARGV[1], ARGV[2], ARGV[3]
local id, ev, ts = ARGV[4], ARGV[5], tonumber(ARGV[6])
local up, dn, left = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local entry, cap, nsample = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
local gone = trim(cutoff, tonumber(ARGV[15]), ARGV[13], tonumber(ARGV[14]))

local prev = redis.call('HGET', M, id)
local pts, pup, pdn = 0, 0, 0
if prev then pts, pup, pdn = meta(prev) end
if ts ~= 0 then
  if prev and ts <= pts then return {'replay', gone, {}} end
  if not prev then
    local st = redis.call('ZSCORE', T, id)
    if st and ts <= tonumber(st) then return {'replay', gone, {}} end
  end
end
-- What the peer transferred since its last announce; a counter that went
-- down means it restarted its session.
local function counters()
  local du, dd = up - pup, dn - pdn
  if du < 0 then du = up end
  if dd < 0 then dd = dn end
  if du ~= 0 then redis.call('HINCRBY', X, 'up', string.format('%d', du)) end
  if dd ~= 0 then redis.call('HINCRBY', X, 'dn', string.format('%d', dd)) end
end
local function keepalive()
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], keyttl) end
end

if ev == 'stopped' then
  if not prev then return {'none', gone, {}} end
  counters()
  forget(id)
  redis.call('ZADD', T, string.format('%d', ts), id)
  trimStopped(ARGV[13], tonumber(ARGV[14]))
  if redis.call('ZCARD', P) == 0 then redis.call('DEL', X) end
  keepalive()
  return {'left', gone, {}}
end

local status = 'ok'
if not prev then
  if cap >= 0 and redis.call('ZCARD', P) >= cap then
    status = 'capped'
  else
    status = 'joined'
  end
end
if status ~= 'capped' then
  counters()
  if ev == 'completed' then redis.call('HINCRBY', X, 'done', 1) end
  redis.call('ZADD', P, now, id)
  if left == 0 then redis.call('ZADD', S, now, id) else redis.call('ZREM', S, id) end
  redis.call('HSET', M, id, string.format('%d %d %d', ts, up, dn))
  redis.call('HSET', E, id, entry)
  if status == 'joined' then keepalive() end
end
-- A swarm no larger than the sample is read whole; a larger one by
-- independent random picks (a negative count: repeats possible, removed in
-- Go), which costs Redis a fraction of distinct picks.
local sample = {}
if nsample > 0 then
  if redis.call('HLEN', E) <= nsample then
    sample = redis.call('HGETALL', E)
  else
    sample = redis.call('HRANDFIELD', E, -nsample, 'WITHVALUES')
  end
end
return {status, gone, sample}
`)

// trimScript expires one swarm's silent peers (ARGV: cutoff, stopped
// cutoff, stopped cap, trim limit) and returns {expired, peers left}. When
// none are left it deletes the swarm's keys but the stopped set, which
// keeps refusing replays until its TTL.
var trimScript = redis.NewScript(scriptPrelude + `
local gone = trim(ARGV[1], tonumber(ARGV[4]), ARGV[2], tonumber(ARGV[3]))
trimStopped(ARGV[2], tonumber(ARGV[3]))
local n = redis.call('ZCARD', P)
if n == 0 then redis.call('DEL', P, S, M, E, X) end
return {gone, n}
`)
