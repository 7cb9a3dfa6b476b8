"""The circuit breakers' Lua scripts (run atomically in Redis by
:mod:`integrations.llm.breaker`, which keeps the same rules in-process when
Redis is not there).  States: 0 closed, 1 open, 2 half-open; times in
milliseconds."""

# KEYS: the organization's calls-in-flight zset, then (state hash, calls-in-flight
# zset, this minute's request counter, this minute's token counter) per
# candidate, in preference order.
# ARGV: now (ms), call id, lease (ms), probe lease (ms), the organization's cap
# (0: none), then each candidate's caps (0: none): calls in flight, requests
# per minute, tokens per minute.
# Leases the first candidate that may take a call.  Returns {chosen (1-based;
# 0 = none, -1 = the organization is at its cap), probe (0/1), full (1 when a
# candidate was skipped for its cap), then per candidate: state, in flight,
# ttft average}.
ACQUIRE = """
local now = tonumber(ARGV[1])
local org_cap = tonumber(ARGV[5])
if org_cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= org_cap then
    return {-1, 0, 1}
  end
end
local chosen, probe, full = 0, 0, 0
local out = {}
for i = 1, (#KEYS - 1) / 4 do
  local h, busy, rpm_key, tpm_key = KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1]
  local cap = tonumber(ARGV[3 * i + 3]) or 0
  local rpm = tonumber(ARGV[3 * i + 4]) or 0
  local tpm = tonumber(ARGV[3 * i + 5]) or 0
  redis.call('ZREMRANGEBYSCORE', busy, '-inf', now)
  local count = redis.call('ZCARD', busy)
  local f = redis.call('HMGET', h, 'state', 'until', 'probe', 'ttft')
  local state = tonumber(f[1]) or 0
  if chosen == 0 then
    local ok = false
    local limited = (cap > 0 and count >= cap)
    if not limited and rpm > 0 then limited = (tonumber(redis.call('GET', rpm_key)) or 0) >= rpm end
    if not limited and tpm > 0 then limited = (tonumber(redis.call('GET', tpm_key)) or 0) >= tpm end
    if limited then
      if state == 0 then full = 1 end
    elseif state == 0 then
      ok = true
    elseif state == 1 and now >= (tonumber(f[2]) or 0) then
      state = 2
      redis.call('HSET', h, 'state', 2, 'probe', now + tonumber(ARGV[4]))
      ok = true
      probe = 1
    elseif state == 2 and now >= (tonumber(f[3]) or 0) then
      redis.call('HSET', h, 'probe', now + tonumber(ARGV[4]))
      ok = true
      probe = 1
    end
    if ok then
      chosen = i
      count = count + 1
      redis.call('ZADD', busy, now + tonumber(ARGV[3]), ARGV[2])
      redis.call('PEXPIRE', busy, tonumber(ARGV[3]))
      if rpm > 0 then
        redis.call('INCR', rpm_key)
        redis.call('PEXPIRE', rpm_key, 61000)
      end
      if org_cap > 0 then
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
      end
    end
  end
  table.insert(out, state)
  table.insert(out, count)
  table.insert(out, f[4] or '')
end
table.insert(out, 1, full)
table.insert(out, 1, probe)
table.insert(out, 1, chosen)
return out
"""

# KEYS: state hash, failures zset, calls-in-flight zset, the organization's
# calls-in-flight zset, this minute's token counter.
# ARGV: now (ms), call id, outcome (ok | fail | none | first), probe (0/1),
#       ttft ms (or ''), threshold, window (ms), cooldown (ms), tokens used.
# "first" is a probe's first event: it closes the circuit but keeps the lease.
# Returns the state after.
SETTLE = """
local now = tonumber(ARGV[1])
local outcome = ARGV[3]
if outcome ~= 'first' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  local tokens = tonumber(ARGV[9]) or 0
  if tokens > 0 then
    redis.call('INCRBY', KEYS[5], tokens)
    redis.call('PEXPIRE', KEYS[5], 61000)
  end
end
local state = tonumber(redis.call('HGET', KEYS[1], 'state')) or 0
if outcome == 'ok' or outcome == 'first' then
  if state ~= 0 then
    redis.call('HSET', KEYS[1], 'state', 0, 'until', 0, 'probe', 0)
    redis.call('DEL', KEYS[2])
    state = 0
  end
  local ttft = tonumber(ARGV[5])
  if ttft then
    local avg = tonumber(redis.call('HGET', KEYS[1], 'ttft'))
    if avg then avg = avg * 0.8 + ttft * 0.2 else avg = ttft end
    redis.call('HSET', KEYS[1], 'ttft', tostring(avg))
  end
elseif outcome == 'fail' then
  local cooldown = tonumber(ARGV[8])
  if state == 2 then
    redis.call('HSET', KEYS[1], 'state', 1, 'until', now + cooldown, 'probe', 0)
    state = 1
  elseif state == 0 then
    local window = tonumber(ARGV[7])
    redis.call('ZADD', KEYS[2], now, ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
    redis.call('PEXPIRE', KEYS[2], window)
    if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then
      redis.call('HSET', KEYS[1], 'state', 1, 'until', now + cooldown, 'probe', 0)
      redis.call('DEL', KEYS[2])
      state = 1
    end
  end
elseif outcome == 'none' and ARGV[4] == '1' and state == 2 then
  redis.call('HSET', KEYS[1], 'probe', 0)
end
return state
"""

# KEYS: state hash, calls-in-flight zset per deployment.  ARGV: now (ms).
# Returns per deployment: state (an open circuit past its cooldown reads as
# half-open), calls in flight, ttft average, ms until an open circuit's probe.
STATUS = """
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local h, busy = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', busy, '-inf', now)
  local f = redis.call('HMGET', h, 'state', 'until', 'ttft')
  local state = tonumber(f[1]) or 0
  local wait = 0
  if state == 1 then
    wait = (tonumber(f[2]) or 0) - now
    if wait <= 0 then state = 2; wait = 0 end
  end
  table.insert(out, state)
  table.insert(out, redis.call('ZCARD', busy))
  table.insert(out, f[3] or '')
  table.insert(out, wait)
end
return out
"""
