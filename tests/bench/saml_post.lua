-- SPDX-License-Identifier: AGPL-3.0-or-later
-- saml_post.lua - wrk script for bench_saml.py: POST the form body in the
-- file given after "--" to the ACS on every request.
--   wrk -t T -c C -d Ns -s saml_post.lua URL/sso/saml/acs -- BODYFILE
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
