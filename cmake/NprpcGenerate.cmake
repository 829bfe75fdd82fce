# nprpc_generate: .proto files -> one library of protobuf messages and nprpc
# stubs and service bases, linking nprpc::nprpc.
#
#   nprpc_generate(TARGET shop PROTOS shop.proto)
#   target_link_libraries(shop_server PRIVATE shop)   # #include "shop.nprpc.h"
#
#   nprpc_generate(TARGET <name> PROTOS <file>...
#                  [PROTO_ROOT <dir>]       # import root of PROTOS; default:
#                                           # the current source directory
#                  [IMPORT_DIRS <dir>...]   # more -I for imports
#                  [DEPENDS <target>...]    # nprpc_generate targets imported from
#                  [GENERATE_MOCK])         # also <file>_mock.nprpc.h (gMock)
#
# A file at <PROTO_ROOT>/a/b.proto is imported as "a/b.proto" and its headers
# are included as "a/b.pb.h" and "a/b.nprpc.h". One protoc run per file writes
# protoc's C++ and protoc-gen-nprpc's output under the build directory. The
# PROTO_ROOT and IMPORT_DIRS of DEPENDS are on protoc's path too, and
# google/protobuf/*.proto come from protoc's own.
function(nprpc_generate)
  cmake_parse_arguments(PARSE_ARGV 0 arg "GENERATE_MOCK" "TARGET;PROTO_ROOT"
                        "PROTOS;IMPORT_DIRS;DEPENDS")
  if(NOT arg_TARGET OR NOT arg_PROTOS)
    message(FATAL_ERROR "nprpc_generate: TARGET and PROTOS are required")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nprpc_generate: unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  foreach(_tool protobuf::protoc nprpc::protoc-gen-nprpc)
    if(NOT TARGET ${_tool})
      message(FATAL_ERROR "nprpc_generate: no ${_tool} (find_package(nprpc) first)")
    endif()
  endforeach()

  if(NOT arg_PROTO_ROOT)
    set(arg_PROTO_ROOT ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  get_filename_component(_root ${arg_PROTO_ROOT} ABSOLUTE)
  set(_import_dirs ${_root})
  foreach(_dir IN LISTS arg_IMPORT_DIRS)
    get_filename_component(_dir ${_dir} ABSOLUTE)
    list(APPEND _import_dirs ${_dir})
  endforeach()
  foreach(_dep IN LISTS arg_DEPENDS)
    get_target_property(_dep_dirs ${_dep} NPRPC_IMPORT_DIRS)
    if(NOT _dep_dirs)
      message(FATAL_ERROR "nprpc_generate: DEPENDS ${_dep} is not an nprpc_generate target")
    endif()
    list(APPEND _import_dirs ${_dep_dirs})
  endforeach()
  list(REMOVE_DUPLICATES _import_dirs)
  list(TRANSFORM _import_dirs PREPEND "-I" OUTPUT_VARIABLE _include_flags)

  set(_out ${CMAKE_CURRENT_BINARY_DIR}/${arg_TARGET}_nprpc)
  set(_nprpc_out ${_out})
  if(arg_GENERATE_MOCK)
    set(_nprpc_out "generate_mock=true:${_out}")
  endif()
  set(_generated)
  foreach(_proto IN LISTS arg_PROTOS)
    get_filename_component(_proto ${_proto} ABSOLUTE)
    file(RELATIVE_PATH _rel ${_root} ${_proto})
    if(_rel MATCHES "^\\.\\./")
      message(FATAL_ERROR "nprpc_generate: ${_proto} is not under PROTO_ROOT ${_root}")
    endif()
    string(REGEX REPLACE "\\.proto$" "" _stem ${_rel})
    set(_files ${_out}/${_stem}.pb.h ${_out}/${_stem}.pb.cc
               ${_out}/${_stem}.nprpc.h ${_out}/${_stem}.nprpc.cc)
    if(arg_GENERATE_MOCK)
      list(APPEND _files ${_out}/${_stem}_mock.nprpc.h)
    endif()
    add_custom_command(
      OUTPUT ${_files}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_out}
      COMMAND protobuf::protoc ${_include_flags}
              --cpp_out=${_out}
              --plugin=protoc-gen-nprpc=$<TARGET_FILE:nprpc::protoc-gen-nprpc>
              --nprpc_out=${_nprpc_out}
              ${_proto}
      DEPENDS ${_proto} protobuf::protoc nprpc::protoc-gen-nprpc
      COMMENT "nprpc_generate ${_rel}"
      VERBATIM)
    list(APPEND _generated ${_files})
  endforeach()

  add_library(${arg_TARGET} ${_generated})
  target_include_directories(${arg_TARGET} PUBLIC $<BUILD_INTERFACE:${_out}>)
  target_link_libraries(${arg_TARGET} PUBLIC nprpc::nprpc protobuf::libprotobuf ${arg_DEPENDS})
  target_compile_features(${arg_TARGET} PUBLIC cxx_std_20)
  set_target_properties(${arg_TARGET} PROPERTIES NPRPC_IMPORT_DIRS "${_import_dirs}")
endfunction()
