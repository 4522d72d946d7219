// tradestate — inspect, check, export and convert saved trading sessions.
//
//   tradestate show-sessions [--json]
//   tradestate verify [SESSION]
//   tradestate export SESSION [--at SEQ]
//   tradestate history SESSION
//   tradestate convert --from BACKEND:DIR --to BACKEND:DIR [SESSION...]
//   tradestate archive SESSION
//
// Common options: --config FILE, --state-dir DIR, --backend NAME.
// Readers never take the writer's lock; they may run beside a live runner.
#include <tradestate/detail/json.hpp>
#include <tradestate/listing.hpp>
#include <tradestate/open.hpp>
#include <tradestate/persister.hpp>
#include <tradestate/session.hpp>
#include <tradestate/session_state.hpp>
#include <tradestate/version.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

using namespace tradestate;
using Persister = StatePersister<SessionState>;
using TradingSession = tradestate::Session<SessionState>;

namespace {

struct Common {
    std::string config_file;
    std::string state_dir;
    std::string backend;
};

Config make_config(const Common& c) {
    // Sections of other programs (fno_runner's [instruments], …) are named
    // in the file's app_sections; this tool checks only tradestate's own.
    Config cfg = Config::discover(c.config_file);
    tradestate::set_money_grouping(cfg.display.money_grouping);
    if (!c.state_dir.empty()) cfg.persistence.state_dir = c.state_dir;
    if (!c.backend.empty()) cfg.persistence.backend = c.backend;
    return cfg;
}

std::shared_ptr<spdlog::logger> make_logger() {
    auto lg = spdlog::stderr_color_mt("tradestate");
    lg->set_pattern("%^%l%$: %v");
    lg->set_level(spdlog::level::err); // warnings reach the user as findings and messages
    return lg;
}

/// "json-files:state" -> config for that backend and directory.
Config endpoint(const Config& base, const std::string& spec, const char* what) {
    const auto colon = spec.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size())
        throw Error(Errc::invalid_argument, std::string(what) + " must be BACKEND:DIR (e.g. json-files:state), got '" + spec + "'");
    Config c = base;
    c.persistence.backend = spec.substr(0, colon);
    c.persistence.state_dir = spec.substr(colon + 1);
    return c;
}

/// Views for a document that is a SessionState; none for other documents.
Document document_of(const boost::json::value& doc) {
    Document d;
    d.main = doc;
    try {
        d.views = tradestate_views(boost::json::value_to<SessionState>(doc));
    } catch (const std::exception&) {
    }
    detail::load_warnings().clear();
    return d;
}

/// What a resume of `name` would give (snapshot + journal), read without the lease.
Inspection<SessionState> inspect(Persister& p, const Config& cfg, const std::string& name) {
    return TradingSession::inspect(p, session_options(cfg, name));
}

/// The listing shows what a resume would give: the journal's operations
/// after the snapshot are counted in (iteration, positions, cash, time).
int show_sessions(Persister& p, const Config& cfg, bool json) {
    auto sessions = p.list();
    for (const auto& n : TradingSession::names(p, cfg.persistence.state_dir))
        if (std::none_of(sessions.begin(), sessions.end(), [&](const SessionInfo& i) { return i.session == n; })) {
            SessionInfo i;
            i.session = n;
            i.location = "(no saved copy loads: see `tradestate verify " + n + "`)";
            sessions.push_back(std::move(i));
        }
    std::sort(sessions.begin(), sessions.end(), [](const auto& a, const auto& b) { return a.session < b.session; });
    for (auto& i : sessions) {
        try {
            auto ins = inspect(p, cfg, i.session);
            if (ins.state) {
                i.meta.iteration = ins.state->iteration;
                i.meta.positions = static_cast<std::int64_t>(ins.state->portfolio.positions().size());
                i.meta.cash_paise = ins.state->portfolio.cash().paise();
                i.meta.saved_at = ins.state->timestamp.to_iso();
            }
            if (ins.report.loss) i.location += " (operations lost: see `tradestate verify " + i.session + "`)";
        } catch (const Error& e) {
            i.location += " (unreadable: " + std::string(e.what()) + ")";
        }
    }
    if (json) std::cout << detail::print(sessions_json(sessions)) << "\n";
    else std::cout << format_sessions(sessions);
    return 0;
}

const char* level_name(Finding::Severity s) {
    switch (s) {
    case Finding::Severity::info: return "info";
    case Finding::Severity::warning: return "warning";
    case Finding::Severity::error: return "ERROR";
    }
    return "?";
}

int verify(Persister& p, const Config& cfg, const std::vector<std::string>& requested) {
    std::vector<std::string> sessions = requested;
    if (sessions.empty()) sessions = TradingSession::names(p, cfg.persistence.state_dir);
    if (sessions.empty()) {
        std::cout << "no saved sessions to verify\n";
        return 0;
    }
    int bad = 0;
    for (const auto& s : sessions) {
        const auto o = session_options(cfg, s);
        if (!TradingSession::exists(p, o)) {
            std::cout << "✗ " << s << ": no such session\n";
            ++bad;
            continue;
        }
        VerifyReport rep;
        rep.session = s;
        if (p.exists(s)) rep = p.backend().verify(s);
        // What a resume would give: the snapshot rolled forward by the journal, and anything lost.
        try {
            auto ins = TradingSession::inspect(p, o);
            const auto& r = ins.report;
            for (const auto& d : r.damage) rep.findings.push_back({Finding::Severity::error, s, d});
            // The snapshot load's narration of what the backend's verify
            // already said (the same message inside it) is not repeated.
            const auto said = [&](const std::string& w) {
                for (const auto& f : rep.findings)
                    if (f.message.size() > 20 && w.find(f.message) != std::string::npos) return true;
                return false;
            };
            for (const auto& w : r.warnings)
                if (!said(w)) rep.findings.push_back({Finding::Severity::warning, s, w});
            for (const auto& n : r.notes) rep.findings.push_back({Finding::Severity::info, s, n});
            if (r.loss) rep.findings.push_back({Finding::Severity::error, s, r.loss_message(s)});
            if (ins.state) {
                rep.findings.push_back({Finding::Severity::info, s,
                                        "a resume loads " + r.source + " and replays " + std::to_string(r.replayed) +
                                            " journal record(s): iteration " + std::to_string(ins.state->iteration) +
                                            ", operation " + std::to_string(r.last_op)});
                const auto diff = ins.state->portfolio.reconcile();
                if (diff != Money{})
                    rep.findings.push_back({Finding::Severity::warning, r.source,
                                            "cash " + ins.state->portfolio.cash().format() +
                                                " does not reconcile: expected " +
                                                ins.state->portfolio.expected_cash().format() +
                                                " (initial cash + realized P&L − charges − open cost), difference " +
                                                diff.format()});
            }
        } catch (const Error& e) {
            rep.findings.push_back({Finding::Severity::error, s, e.what()});
        }
        std::cout << (rep.ok() ? "✓ " : "✗ ") << s << (rep.ok() ? ": valid" : ": INVALID") << "\n";
        for (const auto& f : rep.findings)
            std::cout << "   " << level_name(f.level) << ": " << (f.where.empty() ? "" : f.where + ": ") << f.message << "\n";
        if (!rep.ok()) ++bad;
    }
    return bad ? 1 : 0;
}

/// The state a resume would give (snapshot + journal), or one stored snapshot with --at.
int export_session(Persister& p, const Config& cfg, const std::string& session, std::optional<std::uint64_t> at) {
    if (at) {
        auto r = p.load_at(session, *at);
        if (!r) throw Error(Errc::not_found, "session '" + session + "' has no snapshot " + std::to_string(*at));
        for (const auto& w : r->warnings) std::cerr << "warning: " << w << "\n";
        std::cout << detail::print(boost::json::value_from(r->state)) << "\n";
        return 0;
    }
    auto ins = inspect(p, cfg, session);
    const auto& r = ins.report;
    for (const auto& d : r.damage) std::cerr << "warning: " << d << "\n";
    for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
    if (r.loss) std::cerr << "warning: " << r.loss_message(session) << "\n";
    if (!ins.state) throw Error(r.loss ? Errc::data_loss : Errc::not_found, "no saved session '" + session + "'");
    std::cout << detail::print(boost::json::value_from(*ins.state)) << "\n";
    return r.loss ? 1 : 0;
}

int history(Persister& p, const std::string& session) {
    if (!p.backend().has_history()) {
        std::cerr << "backend '" << p.backend().name()
                  << "' keeps only the newest state (and backups), not a history; use backend = \"compressed-archive\" "
                     "or \"postgres\" for time travel\n";
        return 2;
    }
    const auto snaps = p.backend().history(session);
    std::cout << "seq  saved_at                          iteration  positions  cash\n";
    for (const auto& s : snaps) {
        char line[256];
        std::snprintf(line, sizeof line, "%-4llu %-33s %9lld  %9lld  %s\n", static_cast<unsigned long long>(s.sequence),
                      s.meta.saved_at.c_str(), static_cast<long long>(s.meta.iteration), static_cast<long long>(s.meta.positions),
                      Money::from_paise(s.meta.cash_paise).format().c_str());
        std::cout << line;
    }
    return 0;
}

int convert(const Config& base, const std::string& from, const std::string& to, std::vector<std::string> sessions,
            const std::shared_ptr<spdlog::logger>& lg) {
    const Config a = endpoint(base, from, "--from"), b = endpoint(base, to, "--to");
    auto src = open_backend(a, lg);
    auto dst = open_backend(b, lg);
    if (sessions.empty())
        for (const auto& s : src->list()) sessions.push_back(s.session);
    if (sessions.empty()) {
        std::cout << "nothing to convert: no sessions in " << from << "\n";
        return 0;
    }
    for (const auto& s : sessions) {
        validate_session_name(s);
        auto r = src->load(s);
        if (!r) throw Error(Errc::not_found, "no session '" + s + "' in " + from);
        if (r->recovered)
            throw Error(Errc::corrupt, "session '" + s + "' in " + from + " loads only from an older copy (" + r->source +
                                           "); run `tradestate verify " + s + "` first");
        auto lease = dst->acquire_writer(s);
        dst->save(s, document_of(r->doc), r->meta);
        auto back = dst->load(s);
        if (!back || detail::print(back->doc) != detail::print(r->doc))
            throw Error(Errc::corrupt, "session '" + s + "' did not read back identical from " + to);
        std::cout << "✓ " << s << ": " << from << " -> " << to << " (iteration " << r->meta.iteration << ", "
                  << r->meta.positions << " positions)\n";
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"tradestate " TRADESTATE_VERSION_STRING " — inspect, verify, export and convert saved trading sessions"};
    app.set_version_flag("--version", tradestate::version_line("tradestate"), "print the version and the plugin ABI, and exit");
    app.require_subcommand(1);
    Common common;
    app.add_option("-c,--config", common.config_file, "config.toml to read (default: ./config.toml if present)");
    app.add_option("-s,--state-dir", common.state_dir, "state directory (overrides persistence.state_dir)");
    app.add_option("-b,--backend", common.backend, "backend (overrides persistence.backend)");

    bool json = false;
    auto* show = app.add_subcommand("show-sessions", "list saved sessions as the seed's --show-sessions does");
    show->add_flag("--json", json, "print JSON instead");

    std::vector<std::string> verify_sessions;
    auto* ver = app.add_subcommand("verify", "check every stored copy of the sessions; exit 1 if any is invalid");
    ver->add_option("SESSION", verify_sessions, "sessions to check (default: all)");

    std::string session;
    std::optional<std::uint64_t> at;
    auto* exp = app.add_subcommand("export", "print a session's main document as seed-format JSON");
    exp->add_option("SESSION", session, "session name")->required();
    exp->add_option("--at", at, "an earlier snapshot by sequence number (backends with history)");

    auto* hist = app.add_subcommand("history", "list the stored snapshots of a session (backends with history)");
    hist->add_option("SESSION", session, "session name")->required();

    std::string from, to;
    std::vector<std::string> conv_sessions;
    auto* conv = app.add_subcommand("convert", "copy sessions from one backend to another, verifying each copy");
    conv->add_option("--from", from, "source, BACKEND:DIR")->required();
    conv->add_option("--to", to, "destination, BACKEND:DIR")->required();
    conv->add_option("SESSION", conv_sessions, "sessions to convert (default: all)");

    auto* arch = app.add_subcommand("archive", "move completed trading days out of the live store (compressed-archive)");
    arch->add_option("SESSION", session, "session name")->required();

    app.footer("A session name that starts with '-' goes after `--`: tradestate verify -- -rf\n"
               "Exit codes: 0 done (verify: every session valid); 1 invalid, unreadable or lost state; "
               "2 bad arguments. docs/tool.md has the details.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e); // prints the message (or the help / version)
        if (rc == 0) return 0;
        if (dynamic_cast<const CLI::ExtrasError*>(&e))
            std::cerr << "(a session name that starts with '-' goes after `--`: tradestate verify -- NAME)\n";
        return 2;
    }
    try {
        auto lg = make_logger();
        const Config cfg = make_config(common);
        if (conv->parsed()) return convert(cfg, from, to, conv_sessions, lg);
        Persister p(open_backend(cfg, lg), lg);
        if (show->parsed()) return show_sessions(p, cfg, json);
        if (ver->parsed()) return verify(p, cfg, verify_sessions);
        validate_session_name(session);
        if (exp->parsed()) return export_session(p, cfg, session, at);
        if (hist->parsed()) return history(p, session);
        if (arch->parsed()) {
            std::cout << p.backend().archive(session) << "\n";
            return 0;
        }
    } catch (const Error& e) {
        std::cerr << "tradestate: " << e.what() << "\n";
        return e.code() == Errc::invalid_argument ? 2 : 1;
    } catch (const std::exception& e) {
        std::cerr << "tradestate: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
