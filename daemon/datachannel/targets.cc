#include "daemon/datachannel/targets.h"

#include <algorithm>
#include <string_view>

#include "daemon/datachannel/handshake.h"

namespace vfiomig::datachannel {
namespace {

bool IsWildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::";
}

}  // namespace

std::optional<std::string> TargetHost(const std::string& destination) {
  std::string_view rest = destination;
  for (std::string_view prefix : {"dns:///", "ipv4:", "ipv6:"}) {
    if (rest.starts_with(prefix)) {
      rest.remove_prefix(prefix.size());
      break;
    }
  }
  if (rest.starts_with("unix:") || rest.starts_with("unix-") ||
      rest.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = rest.substr(0, colon);
  // "a::b:port" without brackets is ambiguous: not a usable target.
  if (host.front() != '[' && host.find(':') != std::string_view::npos) {
    return std::nullopt;
  }
  return std::string(host);
}

std::vector<Target> DataChannelTargets(const v1::DataChannelOffer& offer,
                                       const std::string& destination) {
  std::vector<Target> targets;
  if (offer.token().size() != kTokenSize) return targets;
  const std::optional<std::string> dialled = TargetHost(destination);
  if (!dialled.has_value()) return targets;
  std::vector<Target> same, others;
  for (const v1::DataChannelEndpoint& e : offer.endpoints()) {
    if (e.port() == 0 || e.port() > 65535) continue;
    const auto port = static_cast<uint16_t>(e.port());
    if (IsWildcard(e.host()) || e.host() == *dialled) {
      same.push_back(Target{.host = *dialled, .port = port});
    } else {
      others.push_back(Target{.host = e.host(), .port = port});
    }
  }
  for (const std::vector<Target>* list : {&same, &others}) {
    for (const Target& t : *list) {
      if (targets.size() == kMaxTargets) return targets;
      if (std::find(targets.begin(), targets.end(), t) == targets.end()) {
        targets.push_back(t);
      }
    }
  }
  return targets;
}

}  // namespace vfiomig::datachannel
