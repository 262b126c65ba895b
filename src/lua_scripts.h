/*
 * lua_scripts -- the Lua sources of src/lua/, embedded at build time by
 * src/lua/embed.sh.  Indexed by enum store_script (store.h).
 */
#ifndef APIGW_LUA_SCRIPTS_H
#define APIGW_LUA_SCRIPTS_H

extern const char lua_ratelimit[];

#endif
