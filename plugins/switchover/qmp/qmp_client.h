// QmpClient: one session with QEMU's machine protocol over a unix socket
// (QEMU docs/interop/qmp-spec.rst).
//
// Connect reads the server's greeting and negotiates capabilities
// (`qmp_capabilities`) before anything else, as the protocol requires.
// Execute sends one command with a fresh "id" and returns the response
// that carries that id; asynchronous events that arrive in between (QEMU
// sends STOP, RESUME, ... whenever they happen) are queued, never taken for
// a response, and can be awaited with WaitEvent. Messages are split by
// scanning JSON structure, not lines, so a monitor with pretty=on works.
//
// Every call is bounded by its deadline: connecting (a QEMU monitor serves
// one client at a time; a second client gets no greeting until the first
// leaves), each command, each event wait. A message larger than
// kMaxQmpMessageBytes, malformed JSON or a closed socket fails the call;
// the session is unusable afterwards.
//
// Not thread-safe: one thread uses a client.
#ifndef VFIOMIG_PLUGINS_SWITCHOVER_QMP_QMP_CLIENT_H_
#define VFIOMIG_PLUGINS_SWITCHOVER_QMP_QMP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace vfiomig::qmp {

inline constexpr size_t kMaxQmpMessageBytes = size_t{1} << 20;

class QmpClient {
 public:
  // Unavailable naming the path when nothing listens there; DeadlineExceeded
  // when no greeting arrives (another client holds the monitor, or the
  // process is wedged).
  static absl::StatusOr<std::unique_ptr<QmpClient>> Connect(
      const std::string& path, absl::Time deadline);
  ~QmpClient();

  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // The command's "return" value. A QMP error response becomes
  // FailedPrecondition "<command>: <class>: <desc>".
  absl::StatusOr<nlohmann::json> Execute(
      std::string_view command,
      const nlohmann::json& arguments = nlohmann::json::object(),
      absl::Time deadline = absl::InfiniteFuture());

  // The first queued or arriving event named `name` (removed from the
  // queue, with the events before it).
  absl::StatusOr<nlohmann::json> WaitEvent(std::string_view name,
                                           absl::Time deadline);

  // The server's greeting ({"QMP": {"version": ..., "capabilities": ...}}).
  const nlohmann::json& greeting() const { return greeting_; }

 private:
  QmpClient(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  absl::Status Send(const std::string& text, absl::Time deadline);
  // The next complete message, reading as needed.
  absl::StatusOr<nlohmann::json> ReadMessage(absl::Time deadline);

  int fd_;
  std::string path_;
  std::string buffer_;
  uint64_t next_id_ = 1;
  nlohmann::json greeting_;
  std::deque<nlohmann::json> events_;
};

// Where a complete JSON object ends in `text` (one past its closing brace,
// after leading whitespace), 0 when it is incomplete, or an error when the
// text does not start with an object. Pure; exposed for tests.
absl::StatusOr<size_t> CompleteObjectLength(std::string_view text);

}  // namespace vfiomig::qmp

#endif  // VFIOMIG_PLUGINS_SWITCHOVER_QMP_QMP_CLIENT_H_
