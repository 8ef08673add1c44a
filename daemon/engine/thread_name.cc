#include "daemon/engine/thread_name.h"

#include <pthread.h>

#include <algorithm>

namespace vfiomig {

void NameThisThread(std::string_view name) {
  const std::string cut(name.substr(0, kMaxThreadName));
  (void)pthread_setname_np(pthread_self(), cut.c_str());
}

std::string ThreadName(std::string_view prefix, std::string_view id) {
  std::string name(prefix);
  name.append(
      id.substr(0, kMaxThreadName - std::min(kMaxThreadName, prefix.size())));
  return name.substr(0, kMaxThreadName);
}

std::string ThisThreadName() {
  char name[kMaxThreadName + 1] = {};
  if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0) return "";
  return name;
}

}  // namespace vfiomig
