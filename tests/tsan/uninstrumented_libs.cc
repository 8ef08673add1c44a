// ThreadSanitizer's default options and suppressions for the TSan builds of
// the tests, linked into every TSan test binary (beside
// absl_sync_annotations.cc).
//
// ignore_noninstrumented_modules=1: Debian ships gRPC, protobuf, Abseil and
// libstdc++ without TSan instrumentation. TSan sees none of such a
// library's own loads, stores and atomics, so it cannot see how the library
// orders memory between its threads; by default it still intercepts the
// libc calls the library makes (memcpy, free, operator delete, sendmsg) and
// records those as accesses. gRPC hands byte buffers between its poller and
// server threads that way, and absl::Status frees a shared payload when an
// atomic count it cannot see drops to zero, so each such hand-off looks
// like a race with no code of ours on either side (the migration tests
// showed 140 of them in one run, all inside libgrpc, libgpr, libprotobuf
// and libabsl_*). With this option TSan ignores the intercepted calls made
// from uninstrumented libraries: their other accesses were invisible
// already, and every access made by our instrumented code, including
// grpc++'s and protobuf's header-inline code compiled into the tests, is
// still checked. The price: a race that only ever touches our data through
// a libc call made inside such a library (a std::string copied by
// libstdc++'s out-of-line members, say) goes unseen; tsan_race_canary and
// tsan_await_condition check that races in our code still are reported.
//
// TSAN_OPTIONS from the environment is applied on top of this.
extern "C" const char* __tsan_default_options() {
  return "ignore_noninstrumented_modules=1";
}

// One suppression per line, each with its reason.
extern "C" const char* __tsan_default_suppressions() {
  return
      // Thread leaks of gRPC's own threads (its executor, 'default-executo'):
      // gRPC starts them on the first channel and does not join them before
      // exit. It matches only threads created through gRPC's Thread class;
      // a thread of ours left unjoined is still reported.
      "thread:grpc_core::Thread::Thread\n";
}
