# packaging.cmake: what `cmake --install` puts where, and CPack's Debian package
# (linesman_<version>_amd64.deb). tools/scripts/package.sh is the one command that builds it;
# docs/install.md says what the package holds. Included from the top CMakeLists.txt.
#
# Paths are the Debian ones with CPACK_PACKAGING_INSTALL_PREFIX=/usr: relative destinations land
# under /usr, the absolute ones (/etc, /lib/systemd/system) stay where they are.
set(deploy ${PROJECT_SOURCE_DIR}/tools/deploy)

install(TARGETS linesman RUNTIME DESTINATION bin)
install(FILES ${deploy}/systemd/linesman.service ${deploy}/systemd/linesman@.service
        DESTINATION /lib/systemd/system)
install(FILES ${deploy}/linesman.yaml DESTINATION /etc/linesman)
install(FILES ${deploy}/linesman.logrotate DESTINATION /etc/logrotate.d RENAME linesman)
install(FILES ${deploy}/linesman.bash-completion
        DESTINATION share/bash-completion/completions RENAME linesman)
install(FILES ${deploy}/prometheus/linesman-rules.yml ${PROJECT_SOURCE_DIR}/README.md
              ${PROJECT_SOURCE_DIR}/tests/data/access-log.schema.json
        DESTINATION share/doc/linesman)

# The man page: help2man over `linesman --help`/`--version`, plus the hand-written sections in
# tools/deploy/linesman.h2m (the record, files). Built with the binary when help2man is there
# (tools/scripts/setup.sh installs it); without it the install step says what is missing.
find_program(HELP2MAN help2man)
set(man_page ${PROJECT_BINARY_DIR}/tools/linesman.1.gz)
if(HELP2MAN)
  # `linesman run --help` (the flags most readers look for) becomes a section of its own.
  set(run_h2m ${PROJECT_BINARY_DIR}/tools/linesman-run.h2m)
  add_custom_command(
    OUTPUT ${run_h2m}
    COMMAND sh ${deploy}/man-run-section.sh $<TARGET_FILE:linesman> ${run_h2m}
    DEPENDS linesman ${deploy}/man-run-section.sh VERBATIM)
  # --version-string: the page carries the version, not the commit (the page is the same for
  # every build of a release).
  add_custom_command(
    OUTPUT ${man_page}
    COMMAND ${HELP2MAN} --no-info --section=1 --version-string=${PROJECT_VERSION}
            --include=${deploy}/linesman.h2m --include=${run_h2m}
            --output=${PROJECT_BINARY_DIR}/tools/linesman.1 $<TARGET_FILE:linesman>
    COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/tools/linesman.1
    DEPENDS linesman ${run_h2m} ${deploy}/linesman.h2m
    COMMENT "help2man: linesman.1" VERBATIM)
  add_custom_target(linesman_man ALL DEPENDS ${man_page})
  install(FILES ${man_page} DESTINATION share/man/man1)
else()
  install(CODE "message(FATAL_ERROR \"help2man not found: run tools/scripts/setup.sh, reconfigure\")")
endif()

# Debian package. Dependencies come from dpkg-shlibdeps over the binary (libssl3, libspdlog1.10,
# libyaml-cpp0.7, ...). The units are installed, not enabled or started: a debugging proxy needs
# its configuration first; postinst/postrm only tell a running systemd the units changed.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME linesman)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "linesman maintainers <linesman@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "transparent TCP/TLS debugging proxy for Traefik routes")
set(CPACK_PACKAGE_DESCRIPTION
    "linesman sits between a client and Traefik (or Traefik and a backend), forwards every byte
unchanged and writes one JSON access-log record per connection saying where it stopped and why.
It serves Prometheus metrics on a read-only admin endpoint.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # linesman_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# conffiles: dpkg keeps a locally edited configuration on upgrade and asks on conflicts.
file(WRITE ${PROJECT_BINARY_DIR}/deb/conffiles "/etc/linesman/linesman.yaml\n/etc/logrotate.d/linesman\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/deb/conffiles ${deploy}/debian/postinst ${deploy}/debian/postrm)
set(CPACK_STRIP_FILES ON)
include(CPack)
