#include "daemon/datachannel/listener.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/engine/thread_name.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/stream/format.h"
#include "daemon/stream/frame_buffer.h"
#include "spdlog/spdlog.h"

namespace vfiomig::datachannel {
namespace {

// How long a failing accept (out of fds, say) waits before it tries again.
constexpr absl::Duration kAcceptBackoff = absl::Milliseconds(100);

absl::StatusOr<Token> RandomToken() {
  Token token;
  size_t got = 0;
  while (got < token.size()) {
    const ssize_t n = getrandom(token.data() + got, token.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError("getrandom failed: no data channel token");
    }
    got += static_cast<size_t>(n);
  }
  return token;
}

// Best effort: the peer may be gone already.
void Answer(const Socket& socket, const Result& result) {
  const std::string bytes = EncodeResult(result);
  SendAll(socket,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()),
                              bytes.size()))
      .IgnoreError();
}

absl::Status ReadHello(const Socket& socket, Hello* hello) {
  uint8_t fixed[kHelloFixedSize];
  if (absl::Status s = RecvAll(socket, absl::MakeSpan(fixed)); !s.ok()) {
    return s;
  }
  absl::StatusOr<HelloIds> ids = DecodeHelloFixed(fixed, hello);
  if (!ids.ok()) return ids.status();
  std::string text(ids->migration_id + ids->target_device_id, '\0');
  if (absl::Status s = RecvAll(
          socket,
          absl::MakeSpan(reinterpret_cast<uint8_t*>(text.data()), text.size()));
      !s.ok()) {
    return s;
  }
  hello->migration_id = text.substr(0, ids->migration_id);
  hello->target_device_id = text.substr(ids->migration_id);
  return absl::OkStatus();
}

// Frames from `socket` into `stream` until the source half-closes at a
// frame boundary (then OK) or something breaks (the stream has then
// failed, and the status says why).
absl::Status Pump(const Socket& socket, IncomingStream& stream) {
  // Grown to the largest frame seen, never shrunk, and never cleared: a
  // std::string resized up for each frame would zero every payload byte
  // before recv overwrote it (a pass over all device data for nothing).
  // Aligned so that verifying the checksum runs at full speed.
  stream::FrameBuffer buffer;
  uint8_t header[stream::kFrameHeaderSize];
  for (;;) {
    absl::Status s = RecvAll(socket, absl::MakeSpan(header));
    if (absl::IsOutOfRange(s)) return absl::OkStatus();  // clean end
    if (!s.ok()) {
      return stream.Cancel(
          absl::StrCat("the data connection broke (", s.message(), ")"));
    }
    // Only the length is needed to read the frame; the stream's reader
    // checks the magic, the checksum and everything else.
    const uint32_t length = stream::DecodeFrameHeader(header).length;
    if (length > stream::kMaxFramePayload) {
      // Consume refuses it by name, without the payload.
      return stream.Consume(std::string_view(
          reinterpret_cast<const char*>(header), sizeof(header)));
    }
    absl::Span<uint8_t> frame = buffer.Frame(stream::kFrameHeaderSize + length);
    std::memcpy(frame.data(), header, sizeof(header));
    s = RecvAll(socket, frame.subspan(stream::kFrameHeaderSize));
    if (!s.ok()) {
      return stream.Cancel(
          absl::StrCat("the data connection broke (", s.message(), ")"));
    }
    s = stream.Consume(std::string_view(
        reinterpret_cast<const char*>(frame.data()), frame.size()));
    if (!s.ok()) return s;
  }
}

}  // namespace

struct DataChannelListener::Connection {
  Socket socket;
};

absl::StatusOr<std::unique_ptr<DataChannelListener>> DataChannelListener::Start(
    const std::vector<std::string>& hosts, StreamOpener opener) {
  std::vector<Socket> sockets;
  std::vector<Endpoint> endpoints;
  absl::Status last = absl::InvalidArgumentError("no host to listen on");
  for (const std::string& host : hosts) {
    uint16_t port = 0;
    absl::StatusOr<Socket> socket = Listen(host, &port);
    if (!socket.ok()) {
      spdlog::warn("data channel: cannot listen on {}: {}", host,
                   std::string(socket.status().message()));
      last = socket.status();
      continue;
    }
    sockets.push_back(*std::move(socket));
    endpoints.push_back(Endpoint{.host = host, .port = port});
  }
  if (sockets.empty()) return last;
  std::unique_ptr<DataChannelListener> listener(new DataChannelListener(
      std::move(opener), std::move(sockets), std::move(endpoints)));
  for (size_t i = 0; i < listener->listeners_.size(); ++i) {
    listener->accept_threads_.emplace_back([l = listener.get(), i] {
      NameThisThread("migd-dc-accept");
      l->AcceptLoop(i);
    });
  }
  return listener;
}

DataChannelListener::DataChannelListener(StreamOpener opener,
                                         std::vector<Socket> sockets,
                                         std::vector<Endpoint> endpoints)
    : opener_(std::move(opener)),
      listeners_(std::move(sockets)),
      endpoints_(std::move(endpoints)) {}

DataChannelListener::~DataChannelListener() { Stop(); }

absl::StatusOr<Token> DataChannelListener::Offer(
    const std::string& migration_id) {
  absl::StatusOr<Token> token = RandomToken();
  if (!token.ok()) return token.status();
  absl::MutexLock lock(&mu_);
  if (tokens_.insert_or_assign(migration_id, *token).second) {
    offer_order_.push_back(migration_id);
  }
  while (offer_order_.size() > kMaxOffers) {
    tokens_.erase(offer_order_.front());
    offer_order_.erase(offer_order_.begin());
  }
  return token;
}

void DataChannelListener::Withdraw(const std::string& migration_id) {
  absl::MutexLock lock(&mu_);
  if (tokens_.erase(migration_id) == 0) return;
  offer_order_.erase(
      std::find(offer_order_.begin(), offer_order_.end(), migration_id));
}

bool DataChannelListener::Admit(const Hello& hello) {
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(hello.migration_id);
  return it != tokens_.end() && TokensEqual(it->second, hello.token);
}

void DataChannelListener::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && accept_threads_.empty()) return;
    stopping_ = true;
    for (Connection* c : connections_) c->socket.Shutdown();
  }
  for (const Socket& s : listeners_) s.Shutdown();
  for (std::thread& t : accept_threads_) t.join();
  accept_threads_.clear();
  // Connection threads remove themselves; each was shut down above.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::set<Connection*>* c) { return c->empty(); }, &connections_));
}

void DataChannelListener::AcceptLoop(size_t index) {
  for (;;) {
    absl::StatusOr<Socket> socket = Accept(listeners_[index]);
    if (!socket.ok()) {
      if (absl::IsCancelled(socket.status())) return;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      spdlog::warn("data channel: {}", std::string(socket.status().message()));
      absl::SleepFor(kAcceptBackoff);
      continue;
    }
    auto connection = std::make_unique<Connection>();
    connection->socket = *std::move(socket);
    // Checked under the lock that registers the connection, so Stop()
    // either shuts it down or it never starts.
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (connections_.size() >= kMaxConnections) {
      spdlog::warn("data channel: refusing a connection: {} open already",
                   connections_.size());
      continue;  // closes it
    }
    Connection* c = connection.release();
    connections_.insert(c);
    // On a pooled thread: a migration of many devices opens a connection
    // per device, and a fresh thread per connection was a good part of
    // its set-up time. Stop() waits for Serve to deregister, as before.
    try {
      WorkerThreads().Run([this, c] { Serve(c); });
    } catch (const std::system_error& e) {
      spdlog::warn("data channel: refusing a connection: no thread ({})",
                   e.what());
      connections_.erase(c);
      delete c;  // closes it
    }
  }
}

void DataChannelListener::Serve(Connection* connection) {
  const Socket& socket = connection->socket;
  Hello hello;
  absl::Status status = ConfigureConnection(socket);
  if (status.ok()) status = SetReceiveTimeout(socket, kHelloTimeout);
  if (status.ok()) status = ReadHello(socket, &hello);
  if (status.ok() && !Admit(hello)) {
    status = absl::PermissionDeniedError(
        absl::StrCat("data channel: no prepared migration '",
                     hello.migration_id, "' with that token"));
  }
  std::unique_ptr<IncomingStream> stream;
  if (status.ok()) {
    NameThisThread(ThreadName("dc:", hello.target_device_id));
    absl::StatusOr<std::unique_ptr<IncomingStream>> opened =
        opener_(hello.migration_id, hello.target_device_id);
    if (opened.ok()) {
      stream = *std::move(opened);
      streams_opened_.fetch_add(1);
    } else {
      status = opened.status();
    }
  }
  if (status.ok()) status = SetReceiveTimeout(socket, absl::ZeroDuration());
  if (!status.ok()) {
    spdlog::warn("data channel: connection refused: {}", status.ToString());
    Answer(socket, Result::FromStatus(status));
  } else {
    Answer(socket, Result{});
    status = Pump(socket, *stream);
    Result result;
    if (status.ok()) {
      absl::StatusOr<v1::StreamSummary> summary = stream->Finish();
      if (summary.ok()) {
        result.frames = summary->frames();
        result.pre_copy_bytes = summary->pre_copy_bytes();
        result.stop_copy_bytes = summary->stop_copy_bytes();
      } else {
        result = Result::FromStatus(summary.status());
      }
    } else {
      result = Result::FromStatus(status);
    }
    if (!result.status().ok()) {
      spdlog::warn("data channel: stream of migration {} device {}: {}",
                   hello.migration_id, hello.target_device_id,
                   result.status().ToString());
    }
    Answer(socket, result);
    // Destroyed before the connection is forgotten, so that Stop() returns
    // only once every stream has reported how it ended.
    stream.reset();
  }
  absl::MutexLock lock(&mu_);
  connections_.erase(connection);
  delete connection;
}

}  // namespace vfiomig::datachannel
