// tradestate tests — the one test-support library (tests/support): every
// suite includes this, or the one header it needs.
#pragma once

#include <tradestate_test/documents.hpp>
#include <tradestate_test/files.hpp>
#include <tradestate_test/logging.hpp>
#include <tradestate_test/paths.hpp>
#include <tradestate_test/plugins.hpp>
#include <tradestate_test/process.hpp>
#include <tradestate_test/temp_dir.hpp>
