#include "daemon/datachannel/sender.h"

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/datachannel/socket.h"
#include "daemon/stream/frame_buffer.h"

namespace vfiomig::datachannel {
namespace {

absl::StatusOr<Result> ReadResult(const Socket& socket) {
  uint8_t fixed[kResultFixedSize];
  if (absl::Status s = RecvAll(socket, absl::MakeSpan(fixed)); !s.ok()) {
    return s;
  }
  Result result;
  absl::StatusOr<size_t> length = DecodeResultFixed(fixed, &result);
  if (!length.ok()) return length.status();
  result.message.resize(*length);
  if (absl::Status s = RecvAll(
          socket,
          absl::MakeSpan(reinterpret_cast<uint8_t*>(result.message.data()),
                         result.message.size()));
      !s.ok()) {
    return s;
  }
  return result;
}

class DataConnection final : public FrameTransport {
 public:
  explicit DataConnection(Socket socket) : socket_(std::move(socket)) {}

  absl::Span<uint8_t> Buffer(size_t size) override {
    frame_ = buffer_.Frame(size);
    return frame_;
  }

  absl::Status Send(size_t length) override {
    // The destination speaks before the end only to say why it stopped.
    if (Readable(socket_)) return Refused();
    absl::Status s =
        SendAll(socket_, absl::MakeConstSpan(frame_.data(), length));
    if (!s.ok()) return cancelled_.load() ? Cancelled() : Refused(s);
    return absl::OkStatus();
  }

  absl::Status HalfClose() override {
    if (absl::Status s = socket_.ShutdownWrite(); !s.ok()) {
      return cancelled_.load() ? Cancelled() : s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::StreamSummary> AwaitSummary() override {
    absl::StatusOr<Result> result = ReadResult(socket_);
    if (!result.ok()) {
      if (cancelled_.load()) return Cancelled();
      return absl::UnavailableError(absl::StrCat(
          "no answer from the destination: ", result.status().message()));
    }
    if (!result->status().ok()) return result->status();
    v1::StreamSummary summary;
    summary.set_frames(result->frames);
    summary.set_pre_copy_bytes(result->pre_copy_bytes);
    summary.set_stop_copy_bytes(result->stop_copy_bytes);
    return summary;
  }

  void Cancel() override {
    cancelled_.store(true);
    socket_.Shutdown();
  }

  const char* name() const override { return "data channel"; }

 private:
  static absl::Status Cancelled() { return absl::CancelledError("cancelled"); }

  // The destination ended the stream (or the connection broke): its answer
  // if it sent one, else `broken`.
  absl::Status Refused(absl::Status broken = absl::UnavailableError(
                           "the destination closed the data connection")) {
    absl::StatusOr<Result> result = ReadResult(socket_);
    if (result.ok() && !result->status().ok()) return result->status();
    return broken;
  }

  Socket socket_;
  // Aligned for the frame checksum; see frame_buffer.h.
  stream::FrameBuffer buffer_;
  absl::Span<uint8_t> frame_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<FrameTransport>> OpenDataConnection(
    const std::string& host, uint16_t port, const Hello& hello,
    absl::Duration timeout) {
  absl::StatusOr<Socket> socket = Connect(host, port, timeout);
  if (!socket.ok()) return socket.status();
  if (absl::Status s = ConfigureConnection(*socket); !s.ok()) return s;
  if (absl::Status s = SetReceiveTimeout(*socket, timeout); !s.ok()) return s;
  const std::string bytes = EncodeHello(hello);
  if (absl::Status s = SendAll(
          *socket,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()),
                              bytes.size()));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Result> answer = ReadResult(*socket);
  if (!answer.ok()) {
    return absl::UnavailableError(
        absl::StrCat("data channel ", host, ":", port,
                     ": no answer to the hello: ", answer.status().message()));
  }
  if (!answer->status().ok()) return answer->status();
  // From here on a quiet destination is normal (pre-copy rounds pause the
  // stream); keepalive watches the connection instead.
  if (absl::Status s = SetReceiveTimeout(*socket, absl::ZeroDuration());
      !s.ok()) {
    return s;
  }
  return std::make_unique<DataConnection>(*std::move(socket));
}

}  // namespace vfiomig::datachannel
