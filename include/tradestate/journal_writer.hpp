// tradestate — JournalWriter: the appending side of a session's journal,
// wherever it is kept (a file beside the state, or the backend's store).
// Session<State> is its only user in the library; one writer per journal,
// under the session's writer lease.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tradestate {

class JournalWriter {
public:
    virtual ~JournalWriter() = default;
    /// Names the journal inside the snapshots it belongs to.
    [[nodiscard]] virtual std::uint64_t id() const = 0;
    /// Sequence number of the last record appended (base_seq when empty).
    [[nodiscard]] virtual std::uint64_t last_seq() const = 0;
    /// Where the journal is kept (a path, a database table), for messages.
    [[nodiscard]] virtual std::string where() const = 0;
    /// Append operations with one write (and one flush, per the policy);
    /// returns the last sequence number once they are written.
    virtual std::uint64_t append(const std::vector<boost::json::object>& ops) = 0;
    std::uint64_t append(const boost::json::object& op) { return append(std::vector<boost::json::object>{op}); }
    /// After a durable snapshot holding the records up to `through_seq`:
    /// drop them (and older ones), keep the newer ones.
    virtual void compact(std::uint64_t through_seq) = 0;
    /// Flush to stable storage now, whatever the policy.
    virtual void sync() = 0;
    /// False when the journal is no longer where a restart would read it
    /// (the file was deleted or replaced behind the writer's back).
    [[nodiscard]] virtual bool in_place() const { return true; }
};

} // namespace tradestate
