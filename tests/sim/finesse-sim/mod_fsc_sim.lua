-- SPDX-License-Identifier: AGPL-3.0-or-later
-- finesse-sim: presence reports and control for the simulator (prosody 0.12).
-- Load on the VirtualHost (modules_enabled = { ...; "fsc_sim" }) with
--   fsc_sim_component = "pubsub.<domain>"   -- the simulator's XEP-0114 JID
--
-- 1. Presence: whenever a c2s session binds, unbinds or sends broadcast
--    presence, the number of that user's sessions with available presence is
--    sent to the component:
--      <message from='<domain>' to='pubsub.<domain>'>
--        <fsc-presence xmlns='urn:fsc:sim:0'><user name='1001' available='1'/></fsc-presence></message>
-- 2. Sync: a message from the component to the host containing
--    <sync xmlns='urn:fsc:sim:0'/> is answered with one <fsc-presence
--    full='1'> listing every user that has available sessions.
-- 3. Kill: <kill-sessions xmlns='urn:fsc:sim:0' [user='1001']/> from the
--    component closes c2s sessions (all, or one user's), like a node whose
--    notification service went away.
-- Only stanzas whose origin is the component's own session are obeyed.
local st = require "util.stanza";
local NS = "urn:fsc:sim:0";
local component = assert(module:get_option_string("fsc_sim_component"), "fsc_sim_component not set");
local host = module.host;
local pending = {};
local scheduled = false;

local function available_count(username)
	local user = prosody.bare_sessions[username .. "@" .. host];
	local n = 0;
	if user then
		for _, s in pairs(user.sessions) do
			if s.presence and not s.destroyed then n = n + 1; end
		end
	end
	return n;
end

local function flush()
	scheduled = false;
	local msg = st.message({ from = host, to = component }):tag("fsc-presence", { xmlns = NS });
	local any = false;
	for username in pairs(pending) do
		msg:tag("user", { name = username, available = tostring(available_count(username)) }):up();
		any = true;
	end
	pending = {};
	if any then module:send(msg); end
end

local function changed(username)
	if not username then return; end
	pending[username] = true;
	if not scheduled then
		scheduled = true;
		module:add_timer(0, flush);   -- after the event has been processed
	end
end

module:hook("resource-bind", function(event) changed(event.session.username); end);
module:hook("resource-unbind", function(event) changed(event.session.username); end);
module:hook("pre-presence/bare", function(event)
	local origin, stanza = event.origin, event.stanza;
	if origin.type == "c2s" and not stanza.attr.to then changed(origin.username); end
end, -100);

module:hook("message/host", function(event)
	local origin, stanza = event.origin, event.stanza;
	if origin.type ~= "component" or origin.host ~= component then return; end
	if stanza:get_child("sync", NS) then
		local msg = st.message({ from = host, to = component }):tag("fsc-presence", { xmlns = NS, full = "1" });
		for username in pairs(prosody.hosts[host].sessions or {}) do
			local n = available_count(username);
			if n > 0 then msg:tag("user", { name = username, available = tostring(n) }):up(); end
		end
		module:send(msg);
		return true;
	end
	local kill = stanza:get_child("kill-sessions", NS);
	if kill then
		local only = kill.attr.user;
		local victims = {};
		for _, s in pairs(prosody.full_sessions) do
			if s.host == host and (not only or s.username == only) then victims[#victims + 1] = s; end
		end
		for _, s in ipairs(victims) do s:close({ condition = "system-shutdown", text = "finesse-sim: node down" }); end
		module:log("info", "closed %d c2s sessions on request of the simulator", #victims);
		return true;
	end
end, 10);
