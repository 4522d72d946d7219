// tradestate — everything, for those who prefer one include.
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/config.hpp>
#include <tradestate/configuration.hpp>
#include <tradestate/error.hpp>
#include <tradestate/listing.hpp>
#include <tradestate/money.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/plugin_loader.hpp>
#include <tradestate/portfolio.hpp>
#include <tradestate/position.hpp>
#include <tradestate/session.hpp>
#include <tradestate/timestamp.hpp>
#include <tradestate/version.hpp>
