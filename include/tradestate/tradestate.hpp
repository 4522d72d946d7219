// tradestate — everything, for those who prefer one include. Every public
// header is listed (tests/headers checks that none is missing).
#pragma once

#include <tradestate/async_saver.hpp>
#include <tradestate/backend.hpp>
#include <tradestate/backend_journal.hpp>
#include <tradestate/config.hpp>
#include <tradestate/session_settings.hpp>
#include <tradestate/error.hpp>
#include <tradestate/file_journal.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/journal_writer.hpp>
#include <tradestate/listing.hpp>
#include <tradestate/log_time.hpp>
#include <tradestate/money.hpp>
#include <tradestate/open.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/plugin.hpp>
#include <tradestate/plugin_loader.hpp>
#include <tradestate/portfolio.hpp>
#include <tradestate/position.hpp>
#include <tradestate/replay.hpp>
#include <tradestate/session.hpp>
#include <tradestate/session_state.hpp>
#include <tradestate/timestamp.hpp>
#include <tradestate/version.hpp>
