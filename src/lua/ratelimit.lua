--[[
ratelimit.lua -- checks and consumes every window of every applicable
rate-limit policy in one atomic step, and can authenticate an API key in
the same call (arguments built by ratelimit_build() and
the reply read by ratelimit_parse() in src/ratelimit.c).

KEYS[1]    the API key record hash, <prefix>{k:<sha256>}:rec.  Always
           passed (so every call names a key of the caller's hash slot);
           read only in lookup mode.
KEYS[2..]  counter keys, referenced by index from ARGV.  Two windows must
           never share a key.

ARGV[1]    now in microseconds, or "" to use the Redis server's TIME
           (tests pass fixed values to drive the clock)
ARGV[2]    "1": lookup mode (authenticate the key of KEYS[1]), else "0"
ARGV[3]    the default algorithm, used by a key record whose alg is ""
ARGV[4]    lookup mode: the KEYS index of the key policy's per-second
           counter; the minute, hour and day counters follow it
ARGV[5]    P, the number of explicit policies; then for each policy:
             name, flags, algorithm, nwin,
             nwin x (window_seconds, limit, burst, keys_index)
           flags: 1 = shadow (evaluated and reported, never rejects);
                  2 = skip this policy when lookup mode found a key
                      that has its own policy (the default policy)
           burst: capacity of token_bucket/gcra windows (0 = limit);
                  ignored by sliding_window and fixed_window
           then, optionally, lease_max lease_ms: when the request is
           admitted, reserve a lease of up to lease_max units of every
           window for at most lease_ms (see Leases below)

Lookup mode: HGETALL KEYS[1]; no record -> status 2; revoked "1" -> 3;
expires > 0 and now >= expires -> 4 (2-4 return at once and consume
nothing).  Otherwise the record's own policy (fields alg rps rpm rph rpd
burst; a limit 0 or absent = window unused; no limit at all = no policy)
is evaluated first, as the policy named "key".  Its shortest window has
capacity burst (0 = its limit), its longer windows their limit.

Reply:
  { status, now_ms, retry_after_ms, record, nwin,
    nwin x (policy_name, window_seconds, algorithm, limit, burst,
            remaining, reset_ms, shadow, rejected)
    [, lease_units, lease_until_ms, lease_end_us, granted_us] }
    (the lease fields when one was asked for; 0s when none was granted)

Return mode (ARGV[2] = "R", the grant's other arguments unchanged but the
lease pair replaced by  units lease_end_us granted_us): gives back units
of a lease that ended unused, where the algorithm allows it: a
fixed_window still in the window of the grant takes them off its count, a
sliding_window removes that many of the lease's entries, a bucket gets
the tokens back (never beyond full).  Replies { units }.
  status 0 admitted, 1 rejected, 2 unknown key, 3 revoked, 4 expired
  record {id, name, expires, alg, rps, rpm, rph, rpd, burst} (strings)
    when lookup mode found the key (also with status 3 and 4), else {}
  burst is 0 for sliding_window and fixed_window
  remaining >= 0: what would be admitted right now, after this request
  reset_ms: until the window next frees capacity (token_bucket, gcra:
    until the bucket is full again)
  rejected: this window alone would reject (also reported for shadow)
  retry_after_ms: when rejected, the longest wait of the rejecting
    non-shadow windows; a retry that late is admitted absent other traffic
Windows come in order: the key record's policy, then the explicit ones.

Semantics: phase 1 reads every window and writes nothing.  The request
is admitted iff no non-shadow window rejects.  Only then, phase 2 takes
one unit from every window that itself admits (a shadow window past its
limit takes nothing).  A rejected request changes nothing.

Times are integer microseconds and Lua's doubles hold them exactly (below
2^53; token_bucket and gcra reach B W in us, exact up to B = 104249 for a
day window, off by far less than a microsecond beyond).  Every key written
gets a PEXPIRE no longer than its state matters.  Algorithms, for a window of W seconds and limit L:
  fixed_window    hash {k, n}: n admitted in aligned window k = now / W
  sliding_window  zset of admitted timestamps (score = us, members unique);
                  admitted iff fewer than L in (now - W, now] (entries
                  stamped after now, after a clock step back, count too)
  token_bucket,   the same arithmetic: a bucket of B tokens refilled one
  gcra            per T = W / L is the GCRA with tolerance (B - 1) T.
                  Stored as hash {t, r}: the instant the bucket is full
                  again (the TAT) as t + r / L us, 0 <= r < L, so the
                  state stays exact however T divides.
A key of the wrong type (the policy's algorithm changed) counts as empty
and is replaced when written.

Leases: an admitted request may also reserve k units of every window, for
the caller to admit k more requests of the same identity and policies
without asking, until lease_until_ms.  The k units are consumed here, now,
and charged so that whenever they are used no interval admits more than
the limit:
  fixed_window    n += k; the lease ends at the window's end at the latest
  sliding_window  k entries stamped at the lease's end (the latest moment
                  a unit can be used; entries after now count already), so
                  each is counted over an interval covering any use time
  token_bucket,   k tokens taken now, and only while rate x lease_ms tokens
  gcra            stay in the bucket: tokens refilled during the lease can
                  then never add up with leased ones beyond the burst
k is lease_max at most and at most 1/8 of what a window has left (so it
shrinks to 0 near the limit: small limits never lease and the last units
are always decided here, one request at a time), and the same for every
window.  Shadow windows take the units too (if they admit) but never limit
k.  Units a lease does not use are not given back: the cost is
under-admission of at most (processes x k) units near the end of a window.
]]

if redis.replicate_commands then
	redis.replicate_commands()
end

local ALGS = {
	sliding_window = true, token_bucket = true,
	fixed_window = true, gcra = true,
}
local KEY_WINDOWS = { 1, 60, 3600, 86400 }

local function fail(what)
	return error({ err = 'ERR ratelimit.lua: ' .. what })
end

-- A non-negative integer argument, or fail.
local function int_arg(s, what)
	local n = s and tonumber(s)
	if n == nil or n < 0 or n ~= math.floor(n) or n >= 2^53 then
		fail('bad ' .. what)
	end
	return n
end

-- floor(a / b) for integers a >= 0, b > 0, exact despite float division.
local function idiv(a, b)
	local q = math.floor(a / b)
	if q * b > a then
		q = q - 1
	elseif (q + 1) * b <= a then
		q = q + 1
	end
	return q
end

-- ceil(a / b) for integers a >= 0, b > 0.
local function cdiv(a, b)
	local q = idiv(a, b)
	if q * b < a then
		q = q + 1
	end
	return q
end

local function fmt(n)
	return string.format('%d', n)
end

local now
if ARGV[1] ~= nil and ARGV[1] ~= '' then
	now = int_arg(ARGV[1], 'now')
else
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local now_ms = idiv(now, 1000)

-- Runs a read command for window w.  A key of another type (the policy's
-- algorithm changed) reads as nil and is replaced when written.
local function read(w, ...)
	local v = redis.pcall(...)
	if type(v) == 'table' and v.err then
		if string.sub(v.err, 1, 9) ~= 'WRONGTYPE' then
			error(v)
		end
		w.stale = true
		return nil
	end
	return v
end

local function drop_stale(w)
	if w.stale then
		redis.call('DEL', w.key)
		w.stale = false
	end
end

-- ---- fixed_window ----

local function fixed_load(w)
	w.span = w.secs * 1000000
	w.k = idiv(now, w.span)
	w.ends = (w.k + 1) * w.span
	w.n = 0
	local v = read(w, 'HMGET', w.key, 'k', 'n')
	if v and tonumber(v[1]) == w.k then
		w.n = tonumber(v[2]) or 0
	end
	w.ok = w.n < w.limit
	w.wait = w.ends - now
end

local function fixed_commit(w, units)
	drop_stale(w)
	w.n = w.n + (units or 1)
	redis.call('HSET', w.key, 'k', fmt(w.k), 'n', fmt(w.n))
	redis.call('PEXPIRE', w.key, fmt(cdiv(w.ends - now, 1000)))
end

local function fixed_report(w)
	w.remaining = math.max(0, w.limit - w.n)
	w.reset = w.ends - now
end

-- ---- sliding_window ----

local function sliding_score(w, offset)
	local e = redis.call('ZRANGEBYSCORE', w.key, w.lo, '+inf',
	    'WITHSCORES', 'LIMIT', offset, 1)
	return tonumber(e[2])
end

local function sliding_load(w)
	w.span = w.secs * 1000000
	w.lo = '(' .. fmt(now - w.span)
	-- Entries stamped after now (a clock stepped back) still count.
	w.c = read(w, 'ZCOUNT', w.key, w.lo, '+inf') or 0
	if w.c > 0 then
		w.oldest = sliding_score(w, 0)
	end
	w.ok = w.c < w.limit
	if not w.ok then
		-- Admits once all but limit - 1 of the c entries have aged out.
		local e = w.oldest
		if w.c > w.limit then
			e = sliding_score(w, w.c - w.limit)
		end
		w.wait = e + w.span - now
	end
end

local function sliding_commit(w)
	drop_stale(w)
	redis.call('ZREMRANGEBYSCORE', w.key, '-inf', fmt(now - w.span))
	local t = fmt(now)
	if redis.call('ZADD', w.key, 'NX', t, t) == 0 then
		-- Entries of one score leave together, so those at now are
		-- t, t-1, ..., t-(c-1) and t-c is new: members stay unique.
		local c = redis.call('ZCOUNT', w.key, t, t)
		redis.call('ZADD', w.key, t, t .. '-' .. fmt(c))
	end
	redis.call('PEXPIRE', w.key, fmt(w.secs * 1000))
	w.c = w.c + 1
	w.oldest = w.oldest or now
end

-- k leased units, stamped at the lease's end (lease_end, in us).  Members
-- "<lease_end>:<now>:<i>" are unique: one script runs at a time and TIME moves.
local function sliding_lease(w, k, lease_end)
	local args = {}
	local u = fmt(lease_end)
	for i = 1, k do
		args[#args + 1] = u
		args[#args + 1] = u .. ':' .. fmt(now) .. ':' .. fmt(i)
	end
	redis.call('ZADD', w.key, unpack(args))
	redis.call('PEXPIRE', w.key, fmt(cdiv(lease_end - now, 1000) + w.secs * 1000))
	w.c = w.c + k
end

local function sliding_report(w)
	w.remaining = math.max(0, w.limit - w.c)
	w.reset = 0
	if w.oldest then
		w.reset = math.max(0, w.oldest + w.span - now)
	end
end

-- ---- token_bucket and gcra ----
-- d is the debt: L times the time until the bucket is full (in us), so
-- one request adds exactly W (in us) and the capacity is B W.

local function bucket_load(w)
	w.span = w.secs * 1000000
	w.cap = w.burst * w.span
	w.d = 0
	local v = read(w, 'HMGET', w.key, 't', 'r')
	local t, r = v and tonumber(v[1]), v and tonumber(v[2]) or 0
	if t and (t > now or (t == now and r > 0)) then
		w.d = (t - now) * w.limit + r
	end
	w.ok = w.d + w.span <= w.cap
	if not w.ok then
		w.wait = cdiv(w.d + w.span - w.cap, w.limit)
	end
end

local function bucket_commit(w, units)
	drop_stale(w)
	w.d = w.d + w.span * (units or 1)
	local q = idiv(w.d, w.limit)
	-- Exact while B W < 2^53 us (B <= 104249 for a day); beyond that
	-- the remainder is rounded, so keep it in range.
	local r = math.min(math.max(w.d - q * w.limit, 0), w.limit - 1)
	redis.call('HSET', w.key, 't', fmt(now + q), 'r', fmt(r))
	redis.call('PEXPIRE', w.key, fmt(cdiv(cdiv(w.d, w.limit), 1000)))
end

local function bucket_report(w)
	if w.d <= w.cap then
		w.remaining = idiv(w.cap - w.d, w.span)
	else
		w.remaining = 0
	end
	w.reset = cdiv(w.d, w.limit)
end

local IMPL = {
	fixed_window = { fixed_load, fixed_commit, fixed_report },
	sliding_window = { sliding_load, sliding_commit, sliding_report },
	token_bucket = { bucket_load, bucket_commit, bucket_report },
	gcra = { bucket_load, bucket_commit, bucket_report },
}

local windows = {}

local function add_window(name, shadow, alg, secs, limit, burst, key)
	if alg == 'token_bucket' or alg == 'gcra' then
		if burst == 0 then
			burst = limit
		end
	else
		burst = 0
	end
	windows[#windows + 1] = {
		name = name, shadow = shadow, alg = alg, secs = secs,
		limit = limit, burst = burst, key = key,
	}
end

local function key_index(s)
	local i = int_arg(s, 'keys index')
	if i < 2 or i > #KEYS then
		fail('keys index out of range')
	end
	return i
end

-- ---- lookup mode ----

local record = {}
local key_policy = false

if ARGV[2] == '1' then
	local h = redis.call('HGETALL', KEYS[1])
	if #h == 0 then
		return { 2, now_ms, 0, {}, 0 }
	end
	local f = {}
	for i = 1, #h, 2 do
		f[h[i]] = h[i + 1]
	end
	local function num(v)
		v = v and tonumber(v)
		if v == nil or v < 0 or v >= 2^53 then
			return 0
		end
		return math.floor(v)
	end
	local expires = num(f.expires)
	local alg = f.alg or ''
	local lim = { num(f.rps), num(f.rpm), num(f.rph), num(f.rpd) }
	local burst = num(f.burst)
	record = { f.id or '', f.name or '', fmt(expires), alg,
	    fmt(lim[1]), fmt(lim[2]), fmt(lim[3]), fmt(lim[4]), fmt(burst) }
	if f.revoked == '1' then
		return { 3, now_ms, 0, record, 0 }
	end
	if expires > 0 and idiv(now, 1000000) >= expires then
		return { 4, now_ms, 0, record, 0 }
	end
	if not ALGS[alg] then
		alg = ARGV[3]
		if not ALGS[alg] then
			fail('bad default algorithm')
		end
	end
	local base = int_arg(ARGV[4], 'key counters index')
	if base < 2 or base + 3 > #KEYS then
		fail('key counters index out of range')
	end
	for i = 1, 4 do
		if lim[i] > 0 then
			add_window('key', false, alg, KEY_WINDOWS[i], lim[i],
			    key_policy and lim[i] or burst, KEYS[base + i - 1])
			key_policy = true
		end
	end
end

-- ---- explicit policies ----

local a = 6
local npol = int_arg(ARGV[5], 'policy count')
for _ = 1, npol do
	local name, flags = ARGV[a], int_arg(ARGV[a + 1], 'flags')
	local alg, nwin = ARGV[a + 2], int_arg(ARGV[a + 3], 'window count')
	if name == nil or not ALGS[alg] then
		fail('bad policy')
	end
	a = a + 4
	local skip = key_policy and flags % 4 >= 2
	for _ = 1, nwin do
		local secs = int_arg(ARGV[a], 'window seconds')
		local limit = int_arg(ARGV[a + 1], 'limit')
		local burst = int_arg(ARGV[a + 2], 'burst')
		local ki = key_index(ARGV[a + 3])
		if secs < 1 or limit < 1 then
			fail('bad window')
		end
		a = a + 4
		if not skip then
			add_window(name, flags % 2 == 1, alg, secs, limit, burst,
			    KEYS[ki])
		end
	end
end
local lease_max, lease_us = 0, 0
local giveback = ARGV[2] == 'R'
local back, back_end, back_granted = 0, 0, 0
if giveback then
	back = int_arg(ARGV[a], 'units')
	back_end = int_arg(ARGV[a + 1], 'lease end')
	back_granted = int_arg(ARGV[a + 2], 'grant time')
	a = a + 3
elseif a + 1 == #ARGV then
	lease_max = int_arg(ARGV[a], 'lease units')
	lease_us = int_arg(ARGV[a + 1], 'lease ms') * 1000
	a = a + 2
end
if a <= #ARGV then
	fail('extra arguments')
end

-- ---- return mode: give back what a lease did not use ----

if giveback then
	for _, w in ipairs(windows) do
		if w.alg == 'fixed_window' then
			w.span = w.secs * 1000000
			local v = read(w, 'HMGET', w.key, 'k', 'n')
			local k = idiv(back_granted, w.span)
			if v and tonumber(v[1]) == k and idiv(now, w.span) == k then
				local n = math.max(0, (tonumber(v[2]) or 0) - back)
				redis.call('HSET', w.key, 'n', fmt(n))
			end
		elseif w.alg == 'sliding_window' then
			local u = fmt(back_end)
			local members = {}
			for i = 1, back do
				members[#members + 1] = u .. ':' .. fmt(back_granted) .. ':' .. fmt(i)
			end
			if #members > 0 then
				redis.pcall('ZREM', w.key, unpack(members))
			end
		else
			bucket_load(w)
			if w.d > 0 and not w.stale then
				local d = math.max(0, w.d - back * w.span)
				if d == 0 then
					redis.call('DEL', w.key)
				else
					local q = idiv(d, w.limit)
					local r = math.min(math.max(d - q * w.limit, 0), w.limit - 1)
					redis.call('HSET', w.key, 't', fmt(now + q), 'r', fmt(r))
				end
			end
		end
	end
	return { back }
end

-- ---- phase 1: evaluate, write nothing ----

local admitted, wait = true, 0
for _, w in ipairs(windows) do
	IMPL[w.alg][1](w)
	if not w.ok and not w.shadow then
		admitted = false
		wait = math.max(wait, w.wait)
	end
end

-- ---- phase 2: consume from every window that admits ----

if admitted then
	for _, w in ipairs(windows) do
		if w.ok then
			IMPL[w.alg][2](w)
		end
	end
end

-- ---- phase 3: a lease for the next requests (see Leases above) ----

local lease_k, lease_until = 0, 0
local lease_end_us, lease_granted_us = 0, 0
if admitted and lease_max > 0 and lease_us > 0 and #windows > 0 then
	local k, lease_end = lease_max, now + lease_us
	for _, w in ipairs(windows) do
		if w.alg == 'fixed_window' then
			lease_end = math.min(lease_end, w.ends)
		end
	end
	for _, w in ipairs(windows) do
		if w.ok and not w.shadow then
			local left = 0
			if w.alg == 'fixed_window' then
				left = w.limit - w.n
			elseif w.alg == 'sliding_window' then
				left = w.limit - w.c
			else
				local spare = w.cap - w.d - w.limit * lease_us
				if spare > 0 then
					left = idiv(spare, w.span)
				end
			end
			k = math.min(k, idiv(math.max(left, 0), 8))
		end
	end
	-- A lease too short to be of use is not worth its units.
	if k >= 1 and lease_end - now >= 10000 then
		for _, w in ipairs(windows) do
			if w.ok then
				if w.alg == 'sliding_window' then
					sliding_lease(w, k, lease_end)
				else
					IMPL[w.alg][2](w, k)
				end
			end
		end
		lease_k, lease_until = k, idiv(lease_end, 1000)
		lease_end_us, lease_granted_us = lease_end, now
	end
end

local reply = { admitted and 0 or 1, now_ms,
    admitted and 0 or cdiv(wait, 1000), record, #windows }
for _, w in ipairs(windows) do
	IMPL[w.alg][3](w)
	local n = #reply
	reply[n + 1] = w.name
	reply[n + 2] = w.secs
	reply[n + 3] = w.alg
	reply[n + 4] = w.limit
	reply[n + 5] = w.burst
	reply[n + 6] = w.remaining
	reply[n + 7] = cdiv(w.reset, 1000)
	reply[n + 8] = w.shadow and 1 or 0
	reply[n + 9] = w.ok and 0 or 1
end
if lease_max > 0 then
	reply[#reply + 1] = lease_k
	reply[#reply + 1] = lease_until
	reply[#reply + 1] = lease_end_us
	reply[#reply + 1] = lease_granted_us
end
return reply
