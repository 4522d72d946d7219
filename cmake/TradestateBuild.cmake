# Helpers for the project's own targets (not applied to consumers).

if(TRADESTATE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Warnings as errors for code we write.
function(tradestate_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Werror)
endfunction()

# tradestate_add_plugin(<backend-name> SOURCES ... [LIBS ...] [EXTERNAL])
# Builds lib/tradestate/plugins/libtradestate-backend-<backend-name>.so,
# the file name the host looks for when config.toml says
# `backend = "<backend-name>"`. The name is recorded in the global property
# TRADESTATE_BACKENDS, and, unless EXTERNAL (the data lives elsewhere than
# state_dir, as the plugin's TRADESTATE_PLUGIN declaration says too), in
# TRADESTATE_FILE_BACKENDS: tests and examples run over these lists instead
# of naming plugins.
function(tradestate_add_plugin name)
  cmake_parse_arguments(P "EXTERNAL" "" "SOURCES;LIBS" ${ARGN})
  string(REPLACE "-" "_" target "tradestate_backend_${name}")
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE tradestate::tradestate ${P_LIBS})
  tradestate_warnings(${target})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME "tradestate-backend-${name}"
    PREFIX "lib"
    LIBRARY_OUTPUT_DIRECTORY ${TRADESTATE_PLUGIN_OUTPUT_DIR})
  if(TRADESTATE_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/tradestate/plugins COMPONENT tradestate_plugins)
  endif()
  set_property(GLOBAL APPEND PROPERTY TRADESTATE_PLUGIN_TARGETS ${target})
  set_property(GLOBAL APPEND PROPERTY TRADESTATE_BACKENDS ${name})
  if(NOT P_EXTERNAL)
    set_property(GLOBAL APPEND PROPERTY TRADESTATE_FILE_BACKENDS ${name})
  endif()
endfunction()

# Embeds text files (SQL, ...) into a generated header on the target's
# private include path, rebuilt when a file changes:
#   tradestate_embed_text(<target> HEADER postgres_sql.hpp NAMESPACE postgres_sql FILES sql/a.sql ...)
# gives `postgres_sql::a`, a std::string_view of a.sql's bytes.
function(tradestate_embed_text target)
  cmake_parse_arguments(E "" "HEADER;NAMESPACE" "FILES" ${ARGN})
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/embedded)
  set(out ${dir}/${E_HEADER})
  set(files "")
  foreach(f IN LISTS E_FILES)
    get_filename_component(a "${f}" ABSOLUTE)
    list(APPEND files "${a}")
  endforeach()
  string(REPLACE ";" "|" joined "${files}")
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_text.cmake)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${E_NAMESPACE} "-DFILES=${joined}" -P ${script}
    DEPENDS ${files} ${script}
    COMMENT "Embedding ${E_HEADER}"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
  target_include_directories(${target} PRIVATE ${dir})
endfunction()

# Adds every immediate subdirectory of the current directory that has a
# CMakeLists.txt (except those named after EXCEPT), so that new components
# need no edit here.
function(tradestate_add_subdirectories)
  cmake_parse_arguments(A "" "" "EXCEPT" ${ARGN})
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child IN LISTS children)
    if(child IN_LIST A_EXCEPT)
      continue()
    endif()
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()
