# A private PostgreSQL server for the tests, started and stopped by ctest
# itself (fixture tradestate_pg_server) with scripts/pg-test-server.
#
# Any test directory can use it:
#     include(${PROJECT_SOURCE_DIR}/tests/postgres/pg_fixture.cmake)
#     gtest_discover_tests(t ... PROPERTIES
#         FIXTURES_REQUIRED ${TRADESTATE_PG_TEST_FIXTURE}
#         ENVIRONMENT "${TRADESTATE_PG_TEST_ENV}")
# Tests then find the server's URL in $TRADESTATE_TEST_PG_URL.
include_guard(GLOBAL)

# The socket lives in the server directory, and Unix socket paths are
# limited to ~107 bytes: keep it short, and distinct per build tree.
string(MD5 _tradestate_pg_hash "${PROJECT_BINARY_DIR}")
string(SUBSTRING "${_tradestate_pg_hash}" 0 10 _tradestate_pg_hash)
set(TRADESTATE_PG_TEST_DIR "/tmp/tradestate-pg-${_tradestate_pg_hash}" CACHE INTERNAL "")
set(TRADESTATE_PG_TEST_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/pg-test-server" CACHE INTERNAL "")
set(TRADESTATE_PG_TEST_URL "postgresql://postgres@/postgres?host=${TRADESTATE_PG_TEST_DIR}&port=5432" CACHE INTERNAL "")
set(TRADESTATE_PG_TEST_FIXTURE tradestate_pg_server CACHE INTERNAL "")
set(TRADESTATE_PG_TEST_ENV "TRADESTATE_TEST_PG_URL=${TRADESTATE_PG_TEST_URL}" CACHE INTERNAL "")

add_test(NAME postgres.server.start COMMAND ${TRADESTATE_PG_TEST_SCRIPT} start ${TRADESTATE_PG_TEST_DIR})
add_test(NAME postgres.server.stop COMMAND ${TRADESTATE_PG_TEST_SCRIPT} stop ${TRADESTATE_PG_TEST_DIR})
set_tests_properties(postgres.server.start PROPERTIES FIXTURES_SETUP ${TRADESTATE_PG_TEST_FIXTURE} LABELS postgres TIMEOUT 60)
set_tests_properties(postgres.server.stop PROPERTIES FIXTURES_CLEANUP ${TRADESTATE_PG_TEST_FIXTURE} LABELS postgres TIMEOUT 60)
