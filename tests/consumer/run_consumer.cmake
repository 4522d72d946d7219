# ctest driver: build and run the outside project both ways.
#   -DMODE=find_package|add_subdirectory -DSOURCE=<tradestate src> -DBUILD=<tradestate build>
#   -DWORK=<scratch dir> -DCXX_FLAGS=<flags matching the tradestate build (sanitizers)>
#   -DCONFIG=<-DCMAKE_BUILD_TYPE=... and its flags, as the tradestate build>
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${WORK} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("$ ${ARGN}\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

set(flags "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" ${CONFIG})
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE}/tests/consumer/project -B ${WORK}/build ${flags}
      -DCMAKE_PREFIX_PATH=${WORK}/prefix)
else()
  run(${CMAKE_COMMAND} -S ${SOURCE}/tests/consumer/project -B ${WORK}/build ${flags}
      -DTRADESTATE_SOURCE_DIR=${SOURCE})
endif()
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --build ${WORK}/build --parallel 2)
else()
  # The program and the plugin it opens. The plugin target exists only
  # because add_subdirectory() builds the plugins by default; the other
  # three would cost this test minutes under the sanitizers.
  run(${CMAKE_COMMAND} --build ${WORK}/build --parallel 2 --target consumer_app tradestate_backend_json_files)
endif()
run(${WORK}/build/consumer_app ${WORK}/state)
