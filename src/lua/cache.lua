--[[
cache.lua -- the response cache's lookup, in the request's Redis batch
(called by src/cache.c; the key layout is in src/keyspace.h).

KEYS[1]   the resource's base, <prefix>{c:<res64>}; the script reads
          <base>:v (the resource's Vary names, "name1,name2", sorted,
          lower-case), <base>:e:<var40> (the entry) and may set
          <base>:l:<var40> (the fill lock).
ARGV[1]   "L": look up (and take the fill lock on a miss);
          "T": only return Redis time (a refresh: no lookup).
ARGV[2]   the fill lock's life in ms; 0 = take no lock.
ARGV[3..] pairs of request header name (lower-case) and value (several
          fields of one name joined with ", ", blanks trimmed).

The variant of a request is the SHA-1 of, for each Vary name in order,
"name=<length>:<value>\n", or "name=-\n" when the request lacks it; an
empty Vary gives the SHA-1 of "".  src/cache.c builds the same string when
it stores an entry, so both name the same key.

Reply: { now_ms, var40, entry or false, locked (0/1) }; for "T" only
{ now_ms }.  The lock is taken when there is no fresh entry (none, or one
kept past its life for stale-if-error).
]]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'T' then
	return { now_ms }
end

local vary = redis.call('GET', KEYS[1] .. ':v')
local parts = {}
if vary and vary ~= '' then
	local hv = {}
	for i = 3, #ARGV - 1, 2 do
		hv[ARGV[i]] = ARGV[i + 1]
	end
	for name in string.gmatch(vary, '[^,]+') do
		local v = hv[name]
		if v then
			parts[#parts + 1] = name .. '=' .. #v .. ':' .. v .. '\n'
		else
			parts[#parts + 1] = name .. '=-\n'
		end
	end
end
local var = redis.sha1hex(table.concat(parts))
local entry = redis.call('GET', KEYS[1] .. ':e:' .. var)
-- An entry kept past its life (for stale-if-error) is refreshed like a
-- missing one: its first line is "APIGW1 <status> <stored_ms> <ttl_s> ...".
local fresh = false
if entry then
	local stored, ttl = string.match(entry, '^APIGW1 %d+ (%d+) (%d+) ')
	fresh = stored ~= nil and tonumber(stored) + tonumber(ttl) * 1000 > now_ms
end
local locked = 0
local lock_ms = tonumber(ARGV[2]) or 0
if not fresh and lock_ms > 0 then
	if redis.call('SET', KEYS[1] .. ':l:' .. var, '1', 'NX', 'PX', lock_ms) then
		locked = 1
	end
end
return { now_ms, var, entry, locked }
