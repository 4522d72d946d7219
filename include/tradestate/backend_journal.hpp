// tradestate — BackendJournal: a session's journal kept by the backend
// itself (Backend::has_journal(), e.g. postgres). The host makes the records
// (sequence, payload, checksum, as in journal_format.hpp); the backend stores
// each append in one step, fenced by the writer lease. The policy maps to the
// backend's durability: `always` waits for stable storage, `every_second`
// and `never` let the store flush on its own (PostgreSQL's asynchronous
// commit, flushed within a second).
#pragma once

#include <tradestate/backend.hpp>
#include <tradestate/journal_format.hpp>
#include <tradestate/journal_writer.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tradestate {

class BackendJournal final : public JournalWriter {
public:
    /// Start journal `id` (0 picks a random one) for `session` after record `base_seq`.
    [[nodiscard]] static std::unique_ptr<BackendJournal> create(Backend& backend, const std::string& session,
                                                                JournalFsync policy, std::uint64_t base_seq = 0,
                                                                std::uint64_t id = 0) {
        if (id == 0) id = detail::random_id();
        backend.journal_start(session, id, base_seq);
        return std::unique_ptr<BackendJournal>(new BackendJournal(backend, session, policy, id, base_seq));
    }

    /// Continue the session's current journal (Errc::not_found if none was started).
    [[nodiscard]] static std::unique_ptr<BackendJournal> open(Backend& backend, const std::string& session,
                                                              JournalFsync policy) {
        auto j = backend.journal_read(session);
        if (!j) throw Error(Errc::not_found, "session '" + session + "' has no journal in " + backend.name());
        const auto c = decode_journal(*j);
        if (!c.intact()) throw Error(Errc::corrupt, c.corruption + "; the journal cannot be continued");
        return std::unique_ptr<BackendJournal>(new BackendJournal(backend, session, policy, c.id, c.last_seq()));
    }

    [[nodiscard]] std::uint64_t id() const override { return id_; }
    [[nodiscard]] std::uint64_t last_seq() const override {
        std::lock_guard lk(m_);
        return last_seq_;
    }
    [[nodiscard]] std::string where() const override {
        return "the journal of session '" + session_ + "' in " + backend_.name();
    }

    using JournalWriter::append;
    std::uint64_t append(const std::vector<boost::json::object>& ops) override {
        std::lock_guard lk(m_);
        std::vector<JournalEntry> recs;
        recs.reserve(ops.size());
        std::uint64_t seq = last_seq_;
        for (const auto& op : ops) {
            JournalEntry e;
            e.seq = ++seq;
            e.payload = detail::journal_payload(op, where());
            e.checksum = detail::record_checksum(e.seq, e.payload);
            recs.push_back(std::move(e));
        }
        if (recs.empty()) return last_seq_;
        backend_.journal_append(session_, id_, recs, policy_ == JournalFsync::always);
        last_seq_ = seq;
        return seq;
    }

    void compact(std::uint64_t through_seq) override {
        std::lock_guard lk(m_);
        if (through_seq > last_seq_)
            throw Error(Errc::invalid_argument, where() + ": cannot compact through record " +
                                                    std::to_string(through_seq) + ", the last one is " +
                                                    std::to_string(last_seq_));
        backend_.journal_compact(session_, id_, through_seq);
    }

    void sync() override {} // every append is its own committed transaction

private:
    BackendJournal(Backend& backend, std::string session, JournalFsync policy, std::uint64_t id, std::uint64_t last)
        : backend_(backend), session_(std::move(session)), policy_(policy), id_(id), last_seq_(last) {}

    Backend& backend_;
    std::string session_;
    JournalFsync policy_;
    std::uint64_t id_;
    mutable std::mutex m_;
    std::uint64_t last_seq_;
};

} // namespace tradestate
