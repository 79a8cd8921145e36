# SPDX-License-Identifier: AGPL-3.0-or-later
# Imported targets for the Debian -dev packages of DESIGN.md §3.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(MHD     REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(CURL    REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(XML2    REQUIRED IMPORTED_TARGET libxml-2.0)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(INIH    REQUIRED IMPORTED_TARGET inih)
# sd_notify (Type=notify units): READY, STOPPING, WATCHDOG
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(CMOCKA  IMPORTED_TARGET cmocka)
