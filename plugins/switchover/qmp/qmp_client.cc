#include "plugins/switchover/qmp/qmp_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vfiomig::qmp {
namespace {

int PollTimeoutMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  if (left > absl::Seconds(3600)) return 3600 * 1000;
  // Round up so that a wait never ends just before its deadline.
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

std::string Errno(int err) { return std::strerror(err); }

}  // namespace

absl::StatusOr<size_t> CompleteObjectLength(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t' ||
                             text[i] == '\r' || text[i] == '\n')) {
    ++i;
  }
  if (i == text.size()) return 0;
  if (text[i] != '{') {
    return absl::DataLossError(
        absl::StrCat("QMP message does not start with '{' (got '",
                     std::string(1, text[i]), "')"));
  }
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return absl::DataLossError("unbalanced QMP message");
    }
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<QmpClient>> QmpClient::Connect(
    const std::string& path, absl::Time deadline) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("QMP socket path '", path, "' is empty or too long"));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", Errno(errno)));
  }
  std::unique_ptr<QmpClient> client(new QmpClient(fd, path));
  for (;;) {
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address),
                sizeof(address)) == 0) {
      break;
    }
    const int err = errno;
    if (err == EINTR) continue;
    // A full listen backlog: the server is busy, try again until the
    // deadline.
    if (err == EAGAIN && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      continue;
    }
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to QMP socket ", path, ": ", Errno(err),
        err == ENOENT || err == ECONNREFUSED ? " (is the VM running?)" : ""));
  }
  absl::StatusOr<nlohmann::json> greeting = client->ReadMessage(deadline);
  if (!greeting.ok()) {
    if (absl::IsDeadlineExceeded(greeting.status())) {
      return absl::DeadlineExceededError(
          absl::StrCat("no QMP greeting on ", path,
                       " in time (does another client hold this monitor?)"));
    }
    return greeting.status();
  }
  if (!greeting->is_object() || !greeting->contains("QMP")) {
    return absl::DataLossError(
        absl::StrCat(path, " is not a QMP monitor: its first message is ",
                     greeting->dump()));
  }
  client->greeting_ = *std::move(greeting);
  absl::StatusOr<nlohmann::json> negotiated =
      client->Execute("qmp_capabilities", nlohmann::json::object(), deadline);
  if (!negotiated.ok()) return negotiated.status();
  return client;
}

QmpClient::~QmpClient() { close(fd_); }

absl::Status QmpClient::Send(const std::string& text, absl::Time deadline) {
  size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n =
        send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      const int ready = poll(&p, 1, PollTimeoutMs(deadline));
      if (ready == 0) {
        return absl::DeadlineExceededError(
            absl::StrCat("QMP ", path_, ": send timed out"));
      }
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("QMP ", path_, ": send: ", Errno(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> QmpClient::ReadMessage(absl::Time deadline) {
  for (;;) {
    absl::StatusOr<size_t> length = CompleteObjectLength(buffer_);
    if (!length.ok()) {
      return absl::DataLossError(
          absl::StrCat("QMP ", path_, ": ", length.status().message()));
    }
    if (*length > 0) {
      nlohmann::json message = nlohmann::json::parse(
          buffer_.begin(), buffer_.begin() + static_cast<long>(*length),
          nullptr, /*allow_exceptions=*/false);
      buffer_.erase(0, *length);
      if (message.is_discarded() || !message.is_object()) {
        return absl::DataLossError(
            absl::StrCat("QMP ", path_, ": malformed JSON message"));
      }
      return message;
    }
    if (buffer_.size() > kMaxQmpMessageBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("QMP ", path_, ": message larger than ",
                       kMaxQmpMessageBytes, " bytes"));
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, PollTimeoutMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      return absl::InternalError(absl::StrCat("poll: ", Errno(errno)));
    }
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("QMP ", path_, ": no answer in time"));
    }
    char chunk[8192];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("QMP ", path_, ": QEMU closed the connection"));
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(
          absl::StrCat("QMP ", path_, ": recv: ", Errno(errno)));
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

absl::StatusOr<nlohmann::json> QmpClient::Execute(
    std::string_view command, const nlohmann::json& arguments,
    absl::Time deadline) {
  const std::string id = absl::StrCat("vfio-migd-", next_id_++);
  // This absl's string_view is not std::string_view.
  const std::string name(command);
  nlohmann::json request = {{"execute", name}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  if (absl::Status s = Send(request.dump() + "\n", deadline); !s.ok()) {
    return s;
  }
  for (;;) {
    absl::StatusOr<nlohmann::json> message = ReadMessage(deadline);
    if (!message.ok()) {
      return absl::Status(message.status().code(),
                          absl::StrCat(name, ": ", message.status().message()));
    }
    if (message->contains("event")) {
      events_.push_back(*std::move(message));
      continue;
    }
    // A response without our id belongs to no command of ours (QEMU
    // answers unparseable input with an id-less error); skip it.
    auto found = message->find("id");
    if (found == message->end() || *found != id) continue;
    if (auto error = message->find("error"); error != message->end()) {
      const std::string klass = error->value("class", "GenericError");
      const std::string desc = error->value("desc", "no description");
      return absl::FailedPreconditionError(
          absl::StrCat(name, ": ", klass, ": ", desc));
    }
    if (auto result = message->find("return"); result != message->end()) {
      return *result;
    }
    return absl::DataLossError(absl::StrCat(
        name, ": response has neither return nor error: ", message->dump()));
  }
}

absl::StatusOr<nlohmann::json> QmpClient::WaitEvent(std::string_view name,
                                                    absl::Time deadline) {
  for (;;) {
    while (!events_.empty()) {
      nlohmann::json event = std::move(events_.front());
      events_.pop_front();
      if (event.value("event", "") == name) return event;
    }
    absl::StatusOr<nlohmann::json> message = ReadMessage(deadline);
    if (!message.ok()) {
      return absl::Status(message.status().code(),
                          absl::StrCat("waiting for event ", std::string(name),
                                       ": ", message.status().message()));
    }
    if (message->contains("event")) events_.push_back(*std::move(message));
  }
}

}  // namespace vfiomig::qmp
