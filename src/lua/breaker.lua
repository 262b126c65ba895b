--[[
breaker.lua -- the circuit breaker of one backend URL and the bulkhead of
one route on one host, shared by every gateway process through Redis.
Every transition happens here, atomically, on the Redis clock (TIME), so
processes on hosts with skewed clocks agree.  Called by src/breaker.c:
"check" in the request's batch, "report" as a deferred write after the
response.  The per-process fallback in breaker.c (breaker_sm_*) follows
the same rules.

KEYS[1]  the breaker, <prefix>{b:<url32>} (hash).  Absent = closed with
         no failures: nothing ever initialises it.  Fields:
           s  "open" when opened (absent: closed)
           u  open: the Redis time (ms) when it turns half-open
           f  closed: consecutive failures
           k  half-open: consecutive successful trials
KEYS[2]  the half-open trial lease, <prefix>{b:<url32>}:t (string, the
         holder's token, with an expiry so that a trial whose process
         died or hung cannot hold it for ever)
KEYS[3]  the bulkhead, <prefix>{b:<url32>}:c:<route_id>:<host32> (zset of
         tokens scored by the Redis time (ms) they expire at)

ARGV[1]  "check" or "report"
ARGV[2]  now in ms, or "" for the Redis server's TIME (tests pass fixed
         values to drive the clock)

check: ARGV[3] lease_ms (how long a trial lease lasts), ARGV[4]
       max_concurrent (0: no bulkhead), ARGV[5] token, ARGV[6] slot_ms
       (how long a bulkhead slot lasts).
  open (u not reached)         -> {1, 1, f, ms until half-open, 0, 0}
  half-open, lease held        -> {2, 2, f, ms the lease has left, 0, 0}
  bulkhead full                -> {3, state, f, 0, 0, 0}
  else admitted                -> {0, state, f, 0, trial, slot}
  where state is 0 closed, 1 open, 2 half-open; trial 1 when this call
  took the lease (half-open), slot 1 when it took a bulkhead slot.

report: ARGV[3] failed attempts, ARGV[4] "1" when the last attempt
        succeeded, ARGV[5] "1" when the request held the lease, ARGV[6]
        "1" when it held a bulkhead slot, ARGV[7] token, ARGV[8]
        failure_threshold, ARGV[9] success_threshold, ARGV[10]
        recovery_ms.
  Releases the slot and (if still its own) the lease, then:
  closed: failures add up (each failed attempt of a retried request
    counts); reaching failure_threshold opens the breaker; a success
    after them resets the count (deleting the hash: closed again);
  half-open: only the trial counts: a failure opens it again for
    recovery_ms, a success counts, success_threshold of them close it;
  open: reports of requests admitted before it opened are ignored.
  -> {state, failures} after the report.
]]

local KEEP_MS = 86400000 -- an idle breaker's record goes after a day

local function now_ms()
	if ARGV[2] ~= "" then
		return tonumber(ARGV[2])
	end
	local t = redis.call("TIME")
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local now = now_ms()
local rec = redis.call("HMGET", KEYS[1], "s", "u", "f", "k")
local until_ms = tonumber(rec[2]) or 0
local fails = tonumber(rec[3]) or 0
local oks = tonumber(rec[4]) or 0
local state = 0
if rec[1] == "open" then
	state = (now >= until_ms) and 2 or 1
end

if ARGV[1] == "check" then
	local lease = tonumber(ARGV[3])
	local max = tonumber(ARGV[4])
	local token = ARGV[5]
	local hold = tonumber(ARGV[6])
	if state == 1 then
		return {1, 1, fails, until_ms - now, 0, 0}
	end
	if state == 2 then
		local left = redis.call("PTTL", KEYS[2])
		if left > 0 then
			return {2, 2, fails, left, 0, 0}
		end
	end
	local slot = 0
	if max > 0 then
		redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", now)
		if redis.call("ZCARD", KEYS[3]) >= max then
			return {3, state, fails, 0, 0, 0}
		end
		redis.call("ZADD", KEYS[3], now + hold, token)
		if redis.call("PTTL", KEYS[3]) < hold then
			redis.call("PEXPIRE", KEYS[3], hold)
		end
		slot = 1
	end
	local trial = 0
	if state == 2 then
		redis.call("SET", KEYS[2], token, "PX", lease)
		trial = 1
	end
	return {0, state, fails, 0, trial, slot}
end

if ARGV[1] ~= "report" then
	return redis.error_reply("breaker.lua: unknown operation")
end

local nfail = tonumber(ARGV[3])
local success = ARGV[4] == "1"
local trial = ARGV[5] == "1"
local token = ARGV[7]
local fthr = tonumber(ARGV[8])
local sthr = tonumber(ARGV[9])
local recovery = tonumber(ARGV[10])

if ARGV[6] == "1" then
	redis.call("ZREM", KEYS[3], token)
end
if trial and redis.call("GET", KEYS[2]) == token then
	redis.call("DEL", KEYS[2])
end

local function open()
	redis.call("HSET", KEYS[1], "s", "open", "u", now + recovery, "f", 0, "k", 0)
	redis.call("PEXPIRE", KEYS[1], recovery + KEEP_MS)
	return {1, 0}
end

if state == 0 then
	if nfail > 0 then
		fails = fails + nfail
		if fails >= fthr then
			return open()
		end
	end
	if success then
		if fails > 0 then
			redis.call("DEL", KEYS[1])
		end
		return {0, 0}
	end
	if nfail > 0 then
		redis.call("HSET", KEYS[1], "f", fails)
		redis.call("PEXPIRE", KEYS[1], KEEP_MS)
	end
	return {0, fails}
end
if state == 2 and trial then
	if nfail > 0 then
		return open()
	end
	if success then
		oks = oks + 1
		if oks >= sthr then
			redis.call("DEL", KEYS[1])
			return {0, 0}
		end
		redis.call("HSET", KEYS[1], "k", oks)
	end
	return {2, 0}
end
return {state, fails}
