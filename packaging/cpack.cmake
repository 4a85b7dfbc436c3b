# Packaging: install rules and a Debian package built with CPack (DEB generator).
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build
#   (cd build && cpack -G DEB)        → build/edged_<version>_<arch>.deb
#   tests/deploy/deb-install.sh build → builds it, installs it with apt-get, checks files and user
# Included at the end of the root CMakeLists.txt, after every target exists, so the install() rules for
# binaries only name targets that were actually built (the camera plugin and tools come and go with
# their modules).
include_guard(GLOBAL)

set(_edged_root ${PROJECT_SOURCE_DIR})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

# --- what goes where (relative destinations are below /usr) ----------------------------------------
foreach(_tool edged edged-zsim edged-detect)
  if(TARGET ${_tool})
    install(TARGETS ${_tool} RUNTIME DESTINATION bin)
  endif()
endforeach()
# The camera pipeline is a plugin that edged dlopen()s from ../lib/edged next to its binary.
if(TARGET edged_cameras)
  install(TARGETS edged_cameras LIBRARY DESTINATION lib/edged)
endif()

install(FILES ${_edged_root}/systemd/edged.service DESTINATION lib/systemd/system)
install(FILES ${_edged_root}/systemd/99-edged-zigbee.rules DESTINATION lib/udev/rules.d)
install(FILES ${_edged_root}/systemd/edged.sysusers DESTINATION lib/sysusers.d RENAME edged.conf)
install(FILES ${_edged_root}/systemd/edged.tmpfiles DESTINATION lib/tmpfiles.d RENAME edged.conf)
install(FILES ${_edged_root}/systemd/smart.conf DESTINATION share/edged/systemd)
# The alert rules and dashboard (real files in the chart; deploy/ holds links to them).
install(FILES ${_edged_root}/charts/edged/files/edged-rules.yaml DESTINATION share/edged/prometheus)
install(FILES ${_edged_root}/charts/edged/files/edged-dashboard.json DESTINATION share/edged/grafana)
if(EXISTS ${_edged_root}/docs/deployment.md)
  install(FILES ${_edged_root}/docs/deployment.md DESTINATION share/doc/edged)
endif()
file(GLOB _edged_examples ${_edged_root}/config/examples/*.yaml)
if(_edged_examples)
  install(FILES ${_edged_examples} DESTINATION share/edged/examples)
endif()
# /etc/edged/edged.yaml: the documented hardware-node example, a conffile (kept on upgrade and remove).
set(EDGED_PACKAGE_CONFIG "" CACHE FILEPATH "Installed as /etc/edged/edged.yaml (default: config/examples/node.yaml)")
if(EDGED_PACKAGE_CONFIG)
  set(_edged_etc_config ${EDGED_PACKAGE_CONFIG})
elseif(EXISTS ${_edged_root}/config/examples/node.yaml)
  set(_edged_etc_config ${_edged_root}/config/examples/node.yaml)
elseif(EXISTS ${_edged_root}/config/examples/demo.yaml)
  set(_edged_etc_config ${_edged_root}/config/examples/demo.yaml)
endif()
if(_edged_etc_config)
  install(FILES ${_edged_etc_config} DESTINATION /etc/edged RENAME edged.yaml
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
else()
  message(WARNING "packaging: config/examples/node.yaml is missing; the .deb will have no /etc/edged/edged.yaml")
endif()

# --- the package ------------------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME edged)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "edged")
set(CPACK_PACKAGE_CONTACT "edged maintainers <edged@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "home-lab node daemon: Zigbee-to-MQTT bridge, camera detection, storage health, node labels")
set(CPACK_PACKAGE_DESCRIPTION
    "edged bridges a USB Zigbee coordinator to MQTT with zigbee2mqtt-compatible topics and\n HomeAssistant discovery, runs Frigate-style object detection on cameras (CUDA or CPU), watches\n filesystems, mounts and SMART health, exports Prometheus metrics and labels its Kubernetes node.")
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # edged_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/edged/edged")
# The runtime libraries come from dpkg-shlibdeps (libmosquitto1, libopencv-*, libyaml-cpp, ...), so the
# Depends line always matches what the binary links. systemd (or, in containers, systemd-standalone-sysusers) provides systemd-sysusers.
find_program(EDGED_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(EDGED_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # The camera plugin links against edged's exported symbols; shlibdeps must find them in the binary.
  set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
else()
  message(STATUS "packaging: dpkg-shlibdeps not found (apt-get install dpkg-dev); the .deb lists only systemd in Depends")
endif()
# libcurl4 is dlopen()ed for Kubernetes node labels, so shlibdeps cannot see it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | systemd-standalone-sysusers, libcurl4")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "smartmontools")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto, prometheus")
# conffiles: dpkg keeps a locally changed /etc/edged/edged.yaml on upgrade and asks before replacing it.
if(_edged_etc_config)
  file(WRITE ${CMAKE_BINARY_DIR}/packaging/debian/conffiles "/etc/edged/edged.yaml\n")
else()
  file(WRITE ${CMAKE_BINARY_DIR}/packaging/debian/conffiles "")
endif()
foreach(_script postinst prerm postrm)
  configure_file(${_edged_root}/packaging/debian/${_script} ${CMAKE_BINARY_DIR}/packaging/debian/${_script}
                 COPYONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                 WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/packaging/debian/conffiles
    ${CMAKE_BINARY_DIR}/packaging/debian/postinst
    ${CMAKE_BINARY_DIR}/packaging/debian/prerm
    ${CMAKE_BINARY_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
