-- SPDX-License-Identifier: AGPL-3.0-or-later
-- finesse-sim: prosody 0.12 auth provider (authentication = "fsc_sim").
--
-- Offers SASL PLAIN only. The password a client presents is checked against
-- the file <fsc_sim_auth_dir>/<username>, which finesse_sim.py writes
-- (atomically, temp file + rename) and which is read on every login:
--
--   password <plain password>          the agent's Finesse password
--   token <sha256 hex> <exp unix>      an IdS access token the simulator
--                                      accepted as REST Bearer (SSO agents:
--                                      the token is the XMPP password, an
--                                      unverified assumption, finesse.md §2)
--
-- A token line matches when sha256(password) equals the hex and exp is 0 or
-- in the future. No file, no match: the login fails (not-authorized).
local new_sasl = require "util.sasl".new;
local sha256 = require "util.hashes".sha256;
local secure_equals = require "util.hashes".equals;

local auth_dir = assert(module:get_option_string("fsc_sim_auth_dir"), "fsc_sim_auth_dir not set");
local provider = {};

local function safe(username)
	return username and username:match("^[%w%.%-_]+$") and username ~= "." and username ~= "..";
end

function provider.test_password(username, password)
	if not safe(username) or not password then return nil, "Auth failed."; end
	local f = io.open(auth_dir .. "/" .. username, "r");
	if not f then return nil, "Auth failed. Unknown user."; end
	local now, hashed = os.time(), nil;
	for line in f:lines() do
		local kind, rest = line:match("^(%S+) (.*)$");
		if kind == "password" and secure_equals(rest, password) then
			f:close(); return true;
		elseif kind == "token" then
			local hex, exp = rest:match("^(%x+) (%d+)$");
			hashed = hashed or sha256(password, true);
			if hex and secure_equals(hex:lower(), hashed) and (tonumber(exp) == 0 or tonumber(exp) > now) then
				f:close(); return true;
			end
		end
	end
	f:close();
	return nil, "Auth failed. Invalid username or password.";
end

function provider.user_exists(username)
	if not safe(username) then return nil; end
	local f = io.open(auth_dir .. "/" .. username, "r");
	if f then f:close(); return true; end
	return nil, "no such user";
end

function provider.set_password() return nil, "read-only (finesse-sim)"; end
function provider.create_user() return nil, "read-only (finesse-sim)"; end
function provider.delete_user() return nil, "read-only (finesse-sim)"; end
function provider.users() return function() return nil; end; end

function provider.get_sasl_handler()
	return new_sasl(module.host, {
		plain_test = function(_, username, password, _)
			return provider.test_password(username, password), true;
		end;
	});
end

module:provides("auth", provider);
