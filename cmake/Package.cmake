# SPDX-License-Identifier: AGPL-3.0-or-later
# The Debian package (CPack DEB): `cmake --build build --target package`
# or `cd build && cpack -G DEB` -> build/fsc_<version>_<arch>.deb with
#   /usr/bin/{fsc-sso,fsc-connector,fscctl}
#   /lib/systemd/system/{fsc-connector.service,fsc-sso@.service}
#   /usr/share/fsc/web/            the softphone (the connector's default web_dir)
#   /usr/share/doc/fsc/            README, copyright, examples/ (sample configs,
#                                  Salesforce call center, ha/ configs)
#   /etc/fsc/                      empty, 0750 root:fsc (postinst)
# and maintainer scripts that create the system user fsc (deploy/debian/).
# Dependencies are computed from the binaries (dpkg-shlibdeps).

# the units, the docs and the examples (the binaries and web/ install
# from their own CMakeLists)
install(FILES deploy/systemd/fsc-connector.service deploy/systemd/fsc-sso@.service
  DESTINATION /lib/systemd/system)
install(FILES README.md deploy/debian/copyright
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES deploy/fsc-connector.ini.sample deploy/fsc-sso.ini.sample
  deploy/salesforce/fsc-call-center.xml
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ha/README.md ha/haproxy-sso.cfg
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/ha)
install(DIRECTORY ha/keepalived/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/ha/keepalived
  FILES_MATCHING PATTERN "*.conf" PATTERN "*.sh")
install(FILES ha/redis/redis-master.conf ha/redis/redis-replica.conf ha/redis/sentinel.conf
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/ha/redis)
# configs and key files go here; only root and the daemons' group may look
install(DIRECTORY DESTINATION /etc/fsc
  DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fsc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "fsc maintainers <fsc@example.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Cisco Finesse <-> Salesforce Open CTI connector and HA SSO broker")
set(CPACK_PACKAGE_DESCRIPTION
  "fsc-connector holds each agent's Finesse session and serves the softphone
page that Salesforce frames (calls, screen pops, call logs as Tasks).
fsc-sso signs agents in through Cisco IdS on SSO sites (two instances
behind HAProxy, sessions in Redis). fscctl is the admin CLI.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# libraries from the binaries; adduser for the maintainer scripts
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "haproxy, redis-sentinel, keepalived")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# only what the install rules above name (no test binaries exist in them)
set(CPACK_STRIP_FILES OFF)
include(CPack)
