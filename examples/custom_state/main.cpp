// Example: persist your own state type with StatePersister<MyState>.
//
// Any type with Boost.JSON conversions works. Put a `tag_invoke` pair beside
// the type (as Boost.JSON's own examples do); tradestate's types (Money,
// Timestamp, Position, ...) convert themselves, so members of those types
// need nothing more.
//
//   custom_state [STATE_DIR]     saves, loads back and prints the state
#include <tradestate/config.hpp>
#include <tradestate/money.hpp>
#include <tradestate/open.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/timestamp.hpp>

#include <boost/json.hpp>

#include <iostream>
#include <map>
#include <string>

namespace myapp {

struct GridBot {
    std::string name;
    tradestate::Money budget;                       // exact paise
    std::map<std::string, tradestate::Money> levels; // price levels per symbol
    tradestate::Timestamp started;
    std::int64_t fills = 0;
    bool operator==(const GridBot&) const = default;
};

void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const GridBot& b) {
    boost::json::object levels;
    for (const auto& [sym, px] : b.levels) levels[sym] = boost::json::value_from(px);
    jv = {{"name", b.name},
          {"budget", boost::json::value_from(b.budget)},
          {"levels", std::move(levels)},
          {"started", boost::json::value_from(b.started)},
          {"fills", b.fills}};
}

GridBot tag_invoke(const boost::json::value_to_tag<GridBot>&, const boost::json::value& jv) {
    const auto& o = jv.as_object();
    GridBot b;
    b.name = boost::json::value_to<std::string>(o.at("name"));
    b.budget = boost::json::value_to<tradestate::Money>(o.at("budget"));
    for (const auto& kv : o.at("levels").as_object())
        b.levels[std::string(kv.key())] = boost::json::value_to<tradestate::Money>(kv.value());
    b.started = boost::json::value_to<tradestate::Timestamp>(o.at("started"));
    b.fills = o.at("fills").as_int64();
    return b;
}

} // namespace myapp

int main(int argc, char** argv) try {
    tradestate::Config cfg; // defaults: json-files in ./state
    if (argc > 1) cfg.persistence.state_dir = argv[1];
    std::filesystem::create_directories(cfg.persistence.state_dir);

    auto persister = tradestate::open_persister<myapp::GridBot>(cfg);

    myapp::GridBot bot{"nifty-grid", tradestate::Money::parse("250000.00"),
                       {{"NIFTY25SEP24650CE", tradestate::Money::parse("220.40")},
                        {"NIFTY25SEP24700CE", tradestate::Money::parse("198.15")}},
                       tradestate::Timestamp::now(), 3};
    persister->save(bot, "grid");

    auto loaded = persister->load("grid");
    if (loaded)
        for (const auto& w : loaded->warnings) std::cerr << "warning: " << w << "\n"; // load() returns them, logs nothing
    if (!loaded || !(loaded->state == bot)) {
        std::cerr << "round trip failed\n";
        return 1;
    }
    std::cout << "saved and loaded '" << loaded->state.name << "' from " << loaded->source << "\n"
              << "budget " << loaded->state.budget.format() << ", " << loaded->state.levels.size() << " levels, "
              << loaded->state.fills << " fills\n";
    for (const auto& s : persister->list()) std::cout << "session: " << s.session << " at " << s.location << "\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "custom_state: " << e.what() << "\n";
    return 1;
}
