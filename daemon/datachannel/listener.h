// DataChannelListener: the destination's end of the data channel
// (handshake.h has the protocol and why it exists).
//
// Listens on one ephemeral TCP port per host it is given (the hosts of the
// daemon's TCP --listen targets, so it is reachable exactly where the peer
// API is). A prepared migration gets a random token (Offer); the
// PrepareResponse carries it, over the peer link, to the source, which
// presents it on each data connection with the migration and device it
// wants. A connection without the right token is refused before any frame
// is read; with it, the connection feeds the device's IncomingStream the
// frames it carries, exactly as a StreamState call would, and answers with
// the StreamSummary or the error that ended the stream.
//
// One thread per connection (the frames go straight from the socket into
// the device); at most kMaxConnections at a time.
//
// Thread-safe. The opener must stay callable until Stop() returns; the
// destructor stops.
#ifndef VFIOMIG_DAEMON_DATACHANNEL_LISTENER_H_
#define VFIOMIG_DAEMON_DATACHANNEL_LISTENER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/datachannel/handshake.h"
#include "daemon/datachannel/socket.h"
#include "daemon/migration/destination_stream.h"

namespace vfiomig::datachannel {

inline constexpr size_t kMaxConnections = 256;
// Offers kept at most (the oldest goes first); a source opens its data
// connections right after Prepare, so only a flood of Prepares could
// push out a live one, which then falls back to gRPC.
inline constexpr size_t kMaxOffers = 256;
// A connection must present its hello within this.
inline constexpr absl::Duration kHelloTimeout = absl::Seconds(10);

struct Endpoint {
  std::string host;  // as given to Start
  uint16_t port = 0;
};

class DataChannelListener {
 public:
  // The stream a hello names, as DestinationRegistry::OpenStream gives it.
  using StreamOpener =
      std::function<absl::StatusOr<std::unique_ptr<IncomingStream>>(
          const std::string& migration_id,
          const std::string& target_device_id)>;

  // Listens on every host; fails only when none can be bound (the others
  // are logged and skipped).
  static absl::StatusOr<std::unique_ptr<DataChannelListener>> Start(
      const std::vector<std::string>& hosts, StreamOpener opener);

  DataChannelListener(const DataChannelListener&) = delete;
  DataChannelListener& operator=(const DataChannelListener&) = delete;
  ~DataChannelListener();

  // A fresh token for `migration_id`: the only one its connections may
  // present. Unavailable when the system has no randomness to give.
  absl::StatusOr<Token> Offer(const std::string& migration_id);
  // The migration ended: its token opens nothing any more.
  void Withdraw(const std::string& migration_id);

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // Streams that connections opened so far (admitted, device found).
  uint64_t streams_opened() const { return streams_opened_.load(); }

  // Stops accepting, breaks every open connection (their streams fail as
  // a broken transport does) and waits for their threads.
  void Stop();

 private:
  struct Connection;

  DataChannelListener(StreamOpener opener, std::vector<Socket> sockets,
                      std::vector<Endpoint> endpoints);
  void AcceptLoop(size_t index);
  void Serve(Connection* connection);
  // The hello's migration has `token`.
  bool Admit(const Hello& hello);

  const StreamOpener opener_;
  std::vector<Socket> listeners_;
  const std::vector<Endpoint> endpoints_;
  std::vector<std::thread> accept_threads_;
  std::atomic<uint64_t> streams_opened_{0};

  absl::Mutex mu_;
  // Offers in the order they were made, for the kMaxOffers bound.
  std::map<std::string, Token> tokens_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> offer_order_ ABSL_GUARDED_BY(mu_);
  std::set<Connection*> connections_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vfiomig::datachannel

#endif  // VFIOMIG_DAEMON_DATACHANNEL_LISTENER_H_
