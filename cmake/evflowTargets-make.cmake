# evflowTargets.cmake as `make install` installs it (CMake's install generates its own):
# the imported target evflow::evflow over ${prefix}/lib/libevflow.a, with paths found from
# this file's directory, ${prefix}/lib/cmake/evflow, so that the tree may be moved.
if(TARGET evflow::evflow)
  return()
endif()

get_filename_component(_evflow_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

add_library(evflow::evflow STATIC IMPORTED)
set_target_properties(evflow::evflow PROPERTIES
  IMPORTED_LOCATION "${_evflow_prefix}/lib/libevflow.a"
  IMPORTED_LINK_INTERFACE_LANGUAGES "CXX"
  INTERFACE_INCLUDE_DIRECTORIES "${_evflow_prefix}/include"
  INTERFACE_COMPILE_FEATURES "cxx_std_20"
  INTERFACE_LINK_LIBRARIES "Threads::Threads")
if(WIN32)
  # A MinGW-w64 build (make CONFIG=windows install): Winsock, for the IOCP backend.
  set_property(TARGET evflow::evflow APPEND PROPERTY INTERFACE_LINK_LIBRARIES ws2_32)
endif()

foreach(_evflow_file IN ITEMS "${_evflow_prefix}/lib/libevflow.a" "${_evflow_prefix}/include/evflow/evflow.hpp")
  if(NOT EXISTS "${_evflow_file}")
    message(FATAL_ERROR "evflow: ${CMAKE_CURRENT_LIST_FILE} names ${_evflow_file}, which does not exist")
  endif()
endforeach()
unset(_evflow_file)
unset(_evflow_prefix)
