// ThreadSanitizer annotations for Debian's prebuilt Abseil synchronization
// library, linked into TSan builds of the tests only.
//
// Why: libabsl_synchronization.so is not built with -fsanitize=thread, so
// TSan cannot see that absl::Mutex, CondVar and Notification order memory
// (their atomics and futex waits run in uninstrumented code). Every access
// guarded by an absl::Mutex would then be reported as a race, which would
// make the TSan run useless. Suppressing those reports would hide real
// races too.
//
// How: this file defines the library's exported entry points that our code
// calls (Lock, Unlock, Await, CondVar::Wait, Notification::Notify, ...).
// The executable's definitions take precedence over the shared library's
// (ELF symbol interposition); each one calls the library's own function
// (dlsym RTLD_NEXT) and tells TSan about the ordering it provides:
// __tsan_release(mutex) before a mutex is given up, __tsan_acquire(mutex)
// after it is taken. That is the happens-before edge of a lock, nothing
// more: races on data accessed outside the lock are still reported. What
// TSan does not get is lock ownership, so it does not report lock-order
// inversions for absl mutexes.
//
// Conditions (Await, LockWhen and their timed forms) need one more edge.
// absl evaluates a Condition with the mutex held but at moments the calls
// above cannot see: inside Await before the waiter gives the mutex up (so
// after the __tsan_release that Await must do before it blocks), and in
// whichever thread unlocks while a waiter sleeps. Unannotated, a waiter's
// condition reading `queue_.empty()` races, in TSan's eyes, with the
// next holder's push, although both held the mutex. So every condition is
// passed on wrapped: its evaluation acquires the mutex before and releases
// it after, which is exactly what holding it means.
//
// The symbol names are those of Debian 12's libabsl 20220623 (inline
// namespace debian3); a missing one aborts with its name, so a changed
// Abseil fails loudly instead of running unannotated.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}

#define VFIOMIG_STR2(x) #x
#define VFIOMIG_STR(x) VFIOMIG_STR2(x)
static_assert(sizeof(VFIOMIG_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME)) ==
                  sizeof("debian3"),
              "the mangled names below are Debian 12's absl::debian3");

namespace {

// The next definition of `name` after this executable: the library's.
template <typename Fn>
Fn Real(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_sync_annotations: no %s in libabsl\n", name);
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

#define REAL(type, mangled)                     \
  static const auto real = Real<type>(mangled); \
  (void)0

// A caller's condition and the mutex it is evaluated under. Lives on the
// waiter's stack for the whole wait: absl evaluates it only meanwhile.
struct HeldCondition {
  const absl::Condition* cond;
  absl::Mutex* mu;
};

bool EvalHeld(void* arg) {
  // What the waiter wrote before it handed the condition to absl (this
  // struct, the Condition, its lambda), for an evaluation in another
  // thread; Annotated released it.
  __tsan_acquire(arg);
  auto* held = static_cast<HeldCondition*>(arg);
  __tsan_acquire(held->mu);
  const bool result = held->cond->Eval();
  __tsan_release(held->mu);
  return result;
}

// The condition absl is given instead of the caller's: the same result,
// evaluated under the annotations of a held mutex.
absl::Condition Annotated(HeldCondition* held) {
  __tsan_release(held);
  return absl::Condition(&EvalHeld, held);
}

// Debian's Abseil is built without NDEBUG, so every Lock also feeds absl's
// lock-order graph (GraphCycles), whose arrays are guarded by an absl
// SpinLock that TSan cannot see, while the memmove that edits them is one
// TSan intercepts: it reports the graph's own updates as races. Lock-order
// checking stays on in every other build (ASan included), so the TSan build
// turns it off rather than hiding reports inside absl.
[[maybe_unused]] const bool kLockOrderGraphOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

// The *When forms lock once the condition holds; each passes the condition
// on wrapped (Annotated) so that its evaluations are ordered by the mutex.
void Mutex::LockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  HeldCondition held{&cond, this};
  real(this, Annotated(&held));
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  HeldCondition held{&cond, this};
  real(this, Annotated(&held));
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
       "8DurationE");
  HeldCondition held{&cond, this};
  const bool result = real(this, Annotated(&held), timeout);
  __tsan_acquire(this);  // held either way
  return result;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond,
                                      absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_"
       "8DurationE");
  HeldCondition held{&cond, this};
  const bool result = real(this, Annotated(&held), timeout);
  __tsan_acquire(this);  // held either way
  return result;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
       "4TimeE");
  HeldCondition held{&cond, this};
  const bool result = real(this, Annotated(&held), deadline);
  __tsan_acquire(this);
  return result;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond,
                                       absl::Time deadline) {
  REAL(
      bool (*)(Mutex*, const Condition&, absl::Time),
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  HeldCondition held{&cond, this};
  const bool result = real(this, Annotated(&held), deadline);
  __tsan_acquire(this);
  return result;
}

// Await releases the mutex while it waits and holds it again on return.
// The release is announced before absl's first evaluation of the condition
// (absl gives the mutex up inside), which is why that evaluation, too,
// goes through Annotated.
void Mutex::Await(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  HeldCondition held{&cond, this};
  __tsan_release(this);
  real(this, Annotated(&held));
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
       "8DurationE");
  HeldCondition held{&cond, this};
  __tsan_release(this);
  const bool result = real(this, Annotated(&held), timeout);
  __tsan_acquire(this);
  return result;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_"
       "4TimeE");
  HeldCondition held{&cond, this};
  __tsan_release(this);
  const bool result = real(this, Annotated(&held), deadline);
  __tsan_acquire(this);
  return result;
}

void CondVar::Wait(Mutex* mu) {
  REAL(void (*)(CondVar*, Mutex*),
       "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
  __tsan_acquire(this);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
       "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool result = real(this, mu, timeout);
  __tsan_acquire(mu);
  __tsan_acquire(this);
  return result;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  REAL(bool (*)(CondVar*, Mutex*, absl::Time),
       "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool result = real(this, mu, deadline);
  __tsan_acquire(mu);
  __tsan_acquire(this);
  return result;
}

void CondVar::Signal() {
  REAL(void (*)(CondVar*), "_ZN4absl7debian37CondVar6SignalEv");
  __tsan_release(this);
  real(this);
}

void CondVar::SignalAll() {
  REAL(void (*)(CondVar*), "_ZN4absl7debian37CondVar9SignalAllEv");
  __tsan_release(this);
  real(this);
}

void Notification::Notify() {
  REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  REAL(void (*)(const Notification*),
       "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(
    absl::Duration timeout) const {
  REAL(bool (*)(const Notification*, absl::Duration),
       "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
       "8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  REAL(bool (*)(const Notification*, absl::Time),
       "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
       "4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
